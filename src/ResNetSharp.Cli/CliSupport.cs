using System.CommandLine;
using ResNetSharp.Models;

namespace ResNetSharp.Cli;

public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
}

/// <summary>An error to report as one line; the exit code says whether the user or the run is at fault.</summary>
public sealed class CliException(string message, int exitCode = ExitCodes.Usage) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>The architecture options every model command takes, read back as one request.</summary>
internal sealed class ModelOptions
{
    public Option<string> Arch { get; } = CommonOptions.Arch();
    public Option<string?> Input { get; } = CommonOptions.Input();
    public Option<int?> Classes { get; } = CommonOptions.Classes();
    public Option<bool> SmallStem { get; } = CommonOptions.SmallStem();
    public Option<bool> Json { get; } = CommonOptions.Json();

    /// <summary>Adds these options, then <paramref name="extra"/>, to the command.</summary>
    public Command AddTo(Command command, params Option[] extra)
    {
        foreach (var o in new Option[] { Arch, Input, Classes, SmallStem }.Concat(extra).Append(Json)) command.Options.Add(o);
        return command;
    }

    public sealed record Request(string Arch, int C, int H, int W, int? Classes, bool SmallStem, bool Json);

    /// <summary>The parsed request; a malformed --input is a <see cref="CliException"/>.</summary>
    public Request Read(ParseResult pr)
    {
        string arch = pr.GetValue(Arch)!;
        var (c, h, w) = CommonOptions.ParseShape(pr.GetValue(Input), arch);
        return new Request(arch, c, h, w, pr.GetValue(Classes), pr.GetValue(SmallStem), pr.GetValue(Json));
    }

    public ResNet<float> Build(Request r, int seed = 0) => CommonOptions.Build(r.Arch, r.C, r.Classes, r.SmallStem, seed);
}

/// <summary>Options several commands share, and their parsing into library types.</summary>
internal static class CommonOptions
{
    public static Option<int> Batch() => new("--batch", "-b") { Description = "Batch size", DefaultValueFactory = _ => 1 };

    /// <summary>The batch size, or a <see cref="CliException"/> outside [1, 4096].</summary>
    public static int CheckBatch(int n) =>
        n is > 0 and <= 4096 ? n : throw new CliException($"--batch must be between 1 and 4096, got {n}");

    public static Option<string> Arch() => new("--arch", "-a")
    {
        Description = "Architecture: " + string.Join(", ", ResNets.Architectures),
        Required = true,
    };

    public static Option<string?> Input() => new("--input")
    {
        Description = "Input shape CxHxW (default 3x224x224, or 3x32x32 for the CIFAR networks)",
    };

    public static Option<int?> Classes() => new("--classes") { Description = "Number of classes (default 1000, or 10 for CIFAR networks)" };
    public static Option<bool> SmallStem() => new("--small-input-stem") { Description = "3x3 stride-1 stem without max pool (ImageNet depths on 28x28/32x32 images)" };
    public static Option<bool> Json() => new("--json") { Description = "Print one JSON object" };

    /// <summary>Parses "CxHxW": exactly three positive integers, each at most 65536; the default depends on the family.</summary>
    public static (int C, int H, int W) ParseShape(string? text, string arch)
    {
        if (text is null) return ResNets.IsCifar(arch) ? (3, 32, 32) : (3, 224, 224);
        var parts = text.Split('x', 'X', ',');
        if (parts.Length != 3 || !parts.All(p => int.TryParse(p, out int v) && v > 0 && v <= 65536))
            throw new CliException($"--input '{text}' is not a shape CxHxW of positive integers, e.g. 3x224x224");
        return (int.Parse(parts[0]), int.Parse(parts[1]), int.Parse(parts[2]));
    }

    public static ResNet<float> Build(string arch, int channels, int? classes, bool smallStem, int seed = 0)
    {
        if (!ResNets.Architectures.Contains(arch))
            throw new CliException($"unknown architecture '{arch}'; valid: {string.Join(", ", ResNets.Architectures)}");
        if (classes is <= 0) throw new CliException($"--classes must be positive, got {classes}");
        try
        {
            return ResNets.Create(arch, new ResNetOptions { InChannels = channels, NumClasses = classes, SmallInputStem = smallStem, Seed = seed });
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }
    }
}
