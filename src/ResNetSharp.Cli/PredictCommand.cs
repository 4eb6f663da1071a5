using System.CommandLine;
using System.Text.Json;
using ResNetSharp.Imaging;

namespace ResNetSharp.Cli;

/// <summary>`resnet predict --model M IMAGE...`: the top-k classes of each image, with their labels.</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var options = new InferenceOptions();
        var images = new Argument<string[]>("IMAGE") { Description = "Image files (JPEG, PNG, WebP, ...)", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top", "-k") { Description = "Classes to show per image", DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch", "-b") { Description = "Images per forward pass", DefaultValueFactory = _ => 16 };
        var json = CommonOptions.Json();
        var cmd = options.AddTo(new Command("predict", "Classify images: top-k classes with labels and probabilities"), top, batch, json);
        cmd.Arguments.Add(images);
        cmd.SetAction(pr =>
        {
            int k = pr.GetValue(top);
            if (k < 1) throw new CliException($"--top must be positive, got {k}");
            int n = CommonOptions.CheckBatch(pr.GetValue(batch));
            var files = pr.GetValue(images)!;
            var model = options.LoadModel(pr);
            if (!model.HasClassifier) throw new CliException($"{pr.GetValue(options.Model)} has no classifier (a feature extractor); use 'resnet embed'", ExitCodes.Failure);
            var inputs = options.Resolve(pr, model, pr.GetValue(options.Model)!);
            var pre = new ImagePreprocessor(inputs.Preprocessing);
            var results = new List<(string File, ClassScore[] Top)>();
            foreach (var chunk in files.Chunk(n))
            {
                var x = pre.Batch(chunk.Select(f => pre.Preprocess(ImageDecoder.DecodeFile(f))).ToArray());
                var logits = model.Logits(x);
                int classes = logits.Length / chunk.Length;
                for (int i = 0; i < chunk.Length; i++)
                    results.Add((chunk[i], Classification.TopK(logits.Span.Slice(i * classes, classes), inputs.Labels, k)));
            }
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    architecture = model.Metadata.Architecture,
                    labels = inputs.LabelSource,
                    preprocessing = inputs.PreprocessingSource,
                    predictions = results.Select(r => new
                    {
                        image = r.File,
                        top = r.Top.Select(t => new { rank = t.Rank, index = t.Index, label = t.Label, probability = t.Probability, logit = t.Logit }),
                    }),
                }));
                return ExitCodes.Ok;
            }
            foreach (var (file, scores) in results)
            {
                Console.WriteLine(file);
                int width = scores.Max(s => s.Label.Length);
                foreach (var s in scores)
                    Console.WriteLine($"  {s.Rank,2}. {s.Label.PadRight(width)}  {s.Probability * 100,6:F2}%  (class {s.Index})");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
