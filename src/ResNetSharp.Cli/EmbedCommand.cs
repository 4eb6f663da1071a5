using System.CommandLine;
using System.Diagnostics;
using ResNetSharp.Imaging;
using Spectre.Console;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet embed --model M --images DIR --out INDEX`: global-average-pooled features of every image under DIR, in
/// batches, written as an <see cref="EmbeddingIndex"/>. A progress bar on a terminal; plain lines when redirected.
/// </summary>
internal static class EmbedCommand
{
    public static Command Create()
    {
        var options = new InferenceOptions();
        var images = new Option<string>("--images") { Description = "Folder of images (searched recursively)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Index file to write", Required = true };
        var batch = new Option<int>("--batch", "-b") { Description = "Images per forward pass", DefaultValueFactory = _ => 32 };
        var skip = new Option<bool>("--skip-errors") { Description = "Warn about images that do not decode and leave them out, instead of failing" };
        var cmd = options.AddTo(new Command("embed", "Compute embeddings (global-average-pooled features) of a folder of images into an index for 'resnet similar'"),
            images, output, batch, skip);
        cmd.SetAction(pr =>
        {
            int n = CommonOptions.CheckBatch(pr.GetValue(batch));
            string dir = pr.GetValue(images)!, outPath = pr.GetValue(output)!, modelPath = pr.GetValue(options.Model)!;
            if (!Directory.Exists(dir)) throw new CliException($"--images {dir}: no such directory", ExitCodes.Failure);
            var files = ImageDecoder.FindImages(dir);
            if (files.Length == 0) throw new CliException($"--images {dir}: no image files ({string.Join(", ", ImageDecoder.Extensions.Order())})", ExitCodes.Failure);
            var model = options.LoadModel(pr);
            var inputs = options.Resolve(pr, model, modelPath);
            var pre = new ImagePreprocessor(inputs.Preprocessing);
            var sw = Stopwatch.StartNew();
            var kept = new List<string>();
            var features = new List<float>();
            bool skipErrors = pr.GetValue(skip);

            void RunAll(Action<int> progress)
            {
                int done = 0;
                foreach (var chunk in files.Chunk(n))
                {
                    var inputsOk = new List<(string File, float[] Chw)>();
                    foreach (var f in chunk)
                    {
                        try { inputsOk.Add((f, pre.Preprocess(ImageDecoder.DecodeFile(f)))); }
                        catch (ImageDecodeException e) when (skipErrors) { Console.Error.WriteLine($"resnet: warning: skipped {e.Message}"); }
                    }
                    if (inputsOk.Count > 0)
                    {
                        var y = model.Features(pre.Batch(inputsOk.Select(i => i.Chw).ToArray()));
                        if (y.Length != inputsOk.Count * model.FeatureSize)
                            throw new InvalidDataException($"{modelPath}: features of {y.Length / inputsOk.Count} values per image, expected {model.FeatureSize}");
                        kept.AddRange(inputsOk.Select(i => Path.GetFullPath(i.File)));
                        features.AddRange(y.Span.ToArray());
                    }
                    done += chunk.Length;
                    progress(done);
                }
            }

            if (!Console.IsOutputRedirected)
            {
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"embedding {files.Length} images", maxValue: files.Length);
                        RunAll(done => task.Value = done);
                    });
            }
            else
            {
                RunAll(done => Console.WriteLine($"embedded {done}/{files.Length} images ({sw.Elapsed.TotalSeconds:F1} s)"));
            }
            if (kept.Count == 0) throw new CliException($"--images {dir}: no image could be decoded", ExitCodes.Failure);
            string? graph = pr.GetValue(options.PreprocessFile) is { } g && !g.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Path.GetFullPath(g) : null;
            var index = new EmbeddingIndex(Path.GetFullPath(modelPath), model.Metadata.Architecture, kept, [.. features], model.FeatureSize, inputs.Preprocessing, graph);
            index.Save(outPath);
            Console.WriteLine($"wrote {outPath}: {kept.Count} images x {model.FeatureSize} features ({model.Metadata.Architecture}) in {sw.Elapsed.TotalSeconds:F1} s");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
