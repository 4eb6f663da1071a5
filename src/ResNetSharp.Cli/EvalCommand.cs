using System.CommandLine;
using System.Text;
using System.Text.Json;
using ResNetSharp.Data;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Training;

namespace ResNetSharp.Cli;

/// <summary>`resnet eval --model M --data SPEC [--json]`: accuracy, per-class accuracy and the confusion matrix on a test set.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model file (.safetensors written by resnet train)", Required = true };
        var arch = new Option<string?>("--arch") { Description = "Architecture, for a bare torchvision state dict" };
        var data = new Option<string>("--data", "-d") { Description = DataSpec.Help + " (its test split)", DefaultValueFactory = _ => "fashion-mnist" };
        var batch = new Option<int>("--batch", "-b") { Description = "Batch size", DefaultValueFactory = _ => 500 };
        var threads = new Option<int?>("--threads") { Description = "Engine threads (default: the core count)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("eval", "Accuracy, per-class accuracy and confusion matrix of a model on a data set's test split");
        foreach (var o in new Option[] { model, arch, data, batch, threads, json }) cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            if (pr.GetValue(threads) is int t)
                Engine.Threads = t is > 0 and <= 1024 ? t : throw new CliException($"--threads must be between 1 and 1024, got {t}");
            int n = CommonOptions.CheckBatch(pr.GetValue(batch));
            string path = pr.GetValue(model)!;
            if (!File.Exists(path)) throw new CliException($"--model {path}: no such file", ExitCodes.Failure);
            var (net, metadata) = ModelFile.Load(path, pr.GetValue(arch));
            var spec = DataSpec.Parse(pr.GetValue(data)!, evaluationOnly: true);
            if (metadata.Labels is { } labels && !labels.SequenceEqual(spec.Test.Classes))
                Console.Error.WriteLine($"resnet: warning: the model's classes ({string.Join(", ", labels)}) are not {spec.Test.Source}'s " +
                    $"({string.Join(", ", spec.Test.Classes)}); scores are compared by class index");
            var r = Evaluate(new ResNetImageModel(net, metadata), spec.Test, metadata.Preprocess ?? spec.Preprocess, n);
            if (pr.GetValue(json)) Console.WriteLine(ToJson(r, path, spec.Test.Source));
            else Console.Write(ToText(r, path, spec.Test.Source));
            return ExitCodes.Ok;
        });
        return cmd;
    }

    public static EvaluationResult Evaluate(IImageModel model, IDataset test, Preprocessing pre, int batch)
    {
        if (pre.Channels != test.Channels)
            throw new CliException($"the model takes {pre.Channels}-channel images, {test.Source} has {test.Channels}-channel images", ExitCodes.Failure);
        if (model.Metadata.NumClasses != test.Classes.Count)
            throw new CliException($"the model has {model.Metadata.NumClasses} classes, {test.Source} has {test.Classes.Count}", ExitCodes.Failure);
        var loader = new DataLoader(test, batch, pre.Channels, pre.Height, pre.Width, DataSpec.EvalTransform(pre, test));
        return Evaluation.Evaluate(model, loader);
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static string ToJson(EvaluationResult r, string model, string data) => JsonSerializer.Serialize(new
    {
        model, data, images = r.Count, accuracy = r.Accuracy, loss = r.Loss, classes = r.Classes,
        per_class_accuracy = r.PerClassAccuracy.Select(a => double.IsNaN(a) ? (double?)null : a), confusion_matrix = r.Confusion,
    }, JsonOptions);

    public static string ToText(EvaluationResult r, string model, string data)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{model} on {data}: {r.Count} images, accuracy {100 * r.Accuracy:F2}%, loss {r.Loss:F4}");
        int w = Math.Max(12, r.Classes.Max(c => c.Length) + 1);
        sb.AppendLine("per class:");
        for (int c = 0; c < r.Classes.Count; c++)
            sb.AppendLine($"  {r.Classes[c].PadRight(w)} {(double.IsNaN(r.PerClassAccuracy[c]) ? "   n/a" : $"{100 * r.PerClassAccuracy[c],6:F2}%")}  ({r.Confusion[c].Sum()} images)");
        sb.AppendLine("confusion matrix (rows: true class, columns: predicted):");
        sb.Append("  ".PadRight(w + 2));
        for (int c = 0; c < r.Classes.Count; c++) sb.Append($"{c,6}");
        sb.AppendLine();
        for (int c = 0; c < r.Classes.Count; c++)
        {
            sb.Append($"  {c,2} {r.Classes[c].PadRight(w - 3)}");
            foreach (var v in r.Confusion[c]) sb.Append($"{v,6}");
            sb.AppendLine();
        }
        return sb.ToString();
    }
}
