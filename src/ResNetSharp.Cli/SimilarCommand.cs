using System.CommandLine;
using System.Text.Json;
using ResNetSharp.Imaging;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet similar --index INDEX IMAGE -k 5`: the images of an index nearest to IMAGE by cosine similarity of their
/// embeddings. The query goes through the model and preprocessing the index was made with (--model overrides the model).
/// </summary>
internal static class SimilarCommand
{
    public static Command Create()
    {
        var options = new InferenceOptions(modelRequired: false);
        var index = new Option<string>("--index", "-i") { Description = "Index written by 'resnet embed'", Required = true };
        var image = new Argument<string>("IMAGE") { Description = "Query image" };
        var top = new Option<int>("--top", "-k") { Description = "Neighbours to show", DefaultValueFactory = _ => 5 };
        var json = CommonOptions.Json();
        var cmd = options.AddTo(new Command("similar", "Find the images of an index most similar to an image (cosine similarity of embeddings)"), index, top, json);
        cmd.Arguments.Add(image);
        cmd.SetAction(pr =>
        {
            int k = pr.GetValue(top);
            if (k < 1) throw new CliException($"--top must be positive, got {k}");
            string indexPath = pr.GetValue(index)!, query = pr.GetValue(image)!;
            var idx = EmbeddingIndex.Load(indexPath);
            string modelPath = pr.GetValue(options.Model) ?? idx.Model;
            if (!File.Exists(modelPath))
                throw new CliException($"{indexPath} was made with {idx.Model}, which is gone; pass the model with --model", ExitCodes.Failure);
            // The index's own preprocessing graph goes with the index's own model only.
            string? graph = pr.GetValue(options.Model) is null ? idx.PreprocessGraph : null;
            if (graph is not null && !File.Exists(graph))
                throw new CliException($"{indexPath} was made with the preprocessing graph {graph}, which is gone; pass it with --preprocess", ExitCodes.Failure);
            var model = options.LoadModel(pr, modelPath, graph);
            if (model.FeatureSize != idx.FeatureSize)
                throw new CliException($"{modelPath} gives {model.FeatureSize} features but {indexPath} holds {idx.FeatureSize}; use the model the index was made with", ExitCodes.Failure);
            var inputs = options.Resolve(pr, model, modelPath, fallback: idx.Preprocess);
            var pre = new ImagePreprocessor(inputs.Preprocessing);
            var x = pre.Batch([pre.Preprocess(ImageDecoder.DecodeFile(query))]);
            var q = model.Features(x).Span.ToArray();
            var nearest = idx.Nearest(q, k);
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    query, index = indexPath, architecture = idx.Architecture,
                    neighbours = nearest.Select((r, i) => new { rank = i + 1, path = r.Path, cosine = r.Cosine }),
                }));
                return ExitCodes.Ok;
            }
            Console.WriteLine($"{query}: {nearest.Length} nearest of {idx.Count} in {indexPath}");
            for (int i = 0; i < nearest.Length; i++) Console.WriteLine($"  {i + 1,2}. {nearest[i].Cosine,8:F5}  {nearest[i].Path}");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
