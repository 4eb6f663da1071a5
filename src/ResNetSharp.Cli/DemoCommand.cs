using System.CommandLine;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet demo`, the README's main job. For now it shows the engine end to end on a CIFAR-style ResNet-20 for
/// 28x28 grayscale images: its summary, then a timed forward pass on a seeded random batch. (Training on
/// Fashion-MNIST replaces the forward pass once the trainer exists.)
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var cmd = new Command("demo", "Summary of resnet20 for 1x28x28 images and a forward pass on a sample batch");
        cmd.SetAction(_ =>
        {
            var model = CommonOptions.Build("resnet20", 1, 10, false);
            Console.Write(SummaryCommand.ToTable(model.Summarize(1, 28, 28)));
            Console.WriteLine();
            var r = ForwardCommand.Run("resnet20", 1, 28, 28, 8, 10, false, 0);
            Console.WriteLine($"forward pass: batch of 8 random 1x28x28 images -> logits (8, 10) in {r.Milliseconds:F1} ms");
            Console.WriteLine("image 0, top 5 (class: probability): " + string.Join(", ", r.Top5.Select(t => $"{t.Class}: {t.Probability:F4}")));
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
