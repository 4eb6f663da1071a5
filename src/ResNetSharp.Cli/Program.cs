using System.CommandLine;
using ResNetSharp.Cli;

// The `resnet` command: a thin shell over the library. Every failure is one line on stderr and a non-zero exit.
var root = new RootCommand("ResNetSharp: the ResNet family on a managed CPU engine.");
root.Subcommands.Add(SummaryCommand.Create());
root.Subcommands.Add(ForwardCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(InferCommand.Create());
root.Subcommands.Add(PredictCommand.Create());
root.Subcommands.Add(EmbedCommand.Create());
root.Subcommands.Add(SimilarCommand.Create());
root.Subcommands.Add(ServeCommand.Create());

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    Console.Error.WriteLine($"resnet: error: {parse.Errors[0].Message} (see 'resnet --help')");
    return ExitCodes.Usage;
}
try
{
    // Our own handler below turns errors into one line; System.CommandLine's would print a stack trace.
    return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (CliException e)
{
    Console.Error.WriteLine($"resnet: error: {e.Message}");
    return e.ExitCode;
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"resnet: error: {e.Message}");
    return ExitCodes.Failure;
}
