using System.CommandLine;
using ResNetSharp.Data;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Training;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet demo`, the README's main job: trains resnet20 on Fashion-MNIST for a short budget (the installed set,
/// else the embedded sample), evaluates it on the test set, classifies a few test images next to their true labels,
/// and leaves its run folder (model, metrics, curves, checkpoint) under the current directory.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var epochs = new Option<int>("--epochs", "-e") { Description = "Epochs", DefaultValueFactory = _ => 3 };
        var images = new Option<int>("--train-images") { Description = "Training images taken from the full set (the sample has 3,000)", DefaultValueFactory = _ => 10_000 };
        var outDir = new Option<string?>("--out", "-o") { Description = "Run folder (default runs/demo-TIME)" };
        var threads = new Option<int?>("--threads") { Description = "Engine threads (default: the core count)" };
        var cmd = new Command("demo", "Train resnet20 on Fashion-MNIST for a few minutes, evaluate it and classify a few test images");
        foreach (var o in new Option[] { epochs, images, outDir, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(threads) is int t)
                Engine.Threads = t is > 0 and <= 1024 ? t : throw new CliException($"--threads must be between 1 and 1024, got {t}");
            int e = pr.GetValue(epochs), n = pr.GetValue(images);
            if (e is <= 0 or > 1000) throw new CliException($"--epochs must be between 1 and 1000, got {e}");
            if (n <= 0) throw new CliException($"--train-images must be positive, got {n}");
            string dir = pr.GetValue(outDir) ?? Path.Combine("runs", $"demo-{DateTime.Now:yyyyMMdd-HHmmss}");
            var options = new TrainingOptions { Epochs = e, BatchSize = 128, LearningRate = 0.1, WeightDecay = 5e-4, LabelSmoothing = 0.1, Seed = 0 };
            var request = new TrainCommand.Request("resnet20", "fashion-mnist", options, n, false, 28, true, 1);
            DataSpec? spec = null;
            var model = ResNets.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 });
            Console.WriteLine($"resnet20 for 1x28x28 images: {model.ParameterCount:N0} parameters, {model.Summarize(1, 28, 28).Macs / 1e6:F1} M multiply-adds per image");
            var result = TrainCommand.Run(request, dir, resume: null, ready: (s, _, _) => spec = s);

            var (trained, metadata) = ModelFile.Load(Path.Combine(dir, "model.safetensors"));
            var classifier = new ResNetImageModel(trained, metadata);
            var eval = EvalCommand.Evaluate(classifier, spec!.Test, metadata.Preprocess!, 500);
            Console.WriteLine();
            Console.Write(EvalCommand.ToText(eval, Path.Combine(dir, "model.safetensors"), spec.Test.Source));
            Console.WriteLine();
            ShowPredictions(classifier, spec.Test, metadata.Preprocess!, 8);
            Console.WriteLine();
            Console.WriteLine($"run folder {dir}: model.safetensors, best.safetensors, checkpoint.safetensors, metrics.csv, metrics.jsonl, curves.png");
            return ExitCodes.Ok;
        });
        return cmd;
    }

    /// <summary>Classifies <paramref name="count"/> test images spread over the set and prints them beside their true labels.</summary>
    private static void ShowPredictions(IImageModel model, IDataset test, Preprocessing pre, int count)
    {
        var indices = Enumerable.Range(0, count).Select(i => (int)((long)i * test.Count / count)).ToArray();
        var picked = test is InMemoryDataset m ? m.Subset(indices) : throw new InvalidOperationException("the demo's test set is in memory");
        var loader = new DataLoader(picked, count, pre.Channels, pre.Height, pre.Width, DataSpec.EvalTransform(pre, picked));
        var batch = loader.Epoch(0).Single();
        var logits = model.Logits(batch.Images);
        int k = logits.Dim(1);
        Console.WriteLine("test image   true label      predicted       probability");
        var s = logits.Span;
        for (int i = 0; i < count; i++)
        {
            var row = s.Slice(i * k, k);
            int best = 0;
            for (int j = 1; j < k; j++) if (row[j] > row[best]) best = j;
            double z = 0;
            foreach (var v in row) z += Math.Exp(v - row[best]);
            string mark = best == batch.Labels[i] ? "" : "  (wrong)";
            Console.WriteLine($"{indices[i],10}   {test.Classes[batch.Labels[i]],-14}  {test.Classes[best],-14}  {1 / z,6:P1}{mark}");
        }
    }
}
