using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ResNetSharp.Data;
using ResNetSharp.Models;
using ResNetSharp.Training;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet train`: trains a ResNet on a data set with an evaluation each epoch, a progress bar, metrics
/// (metrics.jsonl, metrics.csv, curves.png), a checkpoint each epoch and the best model, in a run folder.
/// `--resume CHECKPOINT` continues a run with its own options (only --epochs and --threads may be given again).
/// </summary>
internal static class TrainCommand
{
    private static readonly Option<string> Arch = new("--arch", "-a") { Description = "Architecture: " + string.Join(", ", ResNets.Architectures), DefaultValueFactory = _ => "resnet20" };
    private static readonly Option<string> Data = new("--data", "-d") { Description = DataSpec.Help, DefaultValueFactory = _ => "fashion-mnist" };
    private static readonly Option<int?> Epochs = new("--epochs", "-e") { Description = "Epochs (default 30)" };
    private static readonly Option<int> Batch = new("--batch", "-b") { Description = "Batch size", DefaultValueFactory = _ => 128 };
    private static readonly Option<string> Optimizer = new("--optimizer") { Description = "sgd or adamw", DefaultValueFactory = _ => "sgd" };
    private static readonly Option<double?> Lr = new("--lr") { Description = "Base learning rate (default 0.1 for SGD, 0.001 for AdamW)" };
    private static readonly Option<double> Momentum = new("--momentum") { Description = "SGD momentum", DefaultValueFactory = _ => 0.9 };
    private static readonly Option<bool> Nesterov = new("--nesterov") { Description = "Nesterov momentum (--nesterov false to turn off)", DefaultValueFactory = _ => true };
    private static readonly Option<double?> WeightDecay = new("--weight-decay") { Description = "Weight decay (default 5e-4 for SGD, 0.05 for AdamW)" };
    private static readonly Option<bool> DecayAll = new("--decay-bn-bias") { Description = "Also decay BN parameters and biases" };
    private static readonly Option<string> Schedule = new("--schedule") { Description = "cosine, step, multistep or constant", DefaultValueFactory = _ => "cosine" };
    private static readonly Option<int> StepEpochs = new("--step-epochs") { Description = "Step schedule: epochs between decays", DefaultValueFactory = _ => 30 };
    private static readonly Option<string?> Milestones = new("--milestones") { Description = "Multi-step schedule: epochs, e.g. 15,25" };
    private static readonly Option<double> Gamma = new("--gamma") { Description = "Step and multi-step decay factor", DefaultValueFactory = _ => 0.1 };
    private static readonly Option<double> Warmup = new("--warmup-epochs") { Description = "Linear warm-up epochs (fractions allowed)", DefaultValueFactory = _ => 0 };
    private static readonly Option<double> Smoothing = new("--label-smoothing") { Description = "Label smoothing", DefaultValueFactory = _ => 0 };
    private static readonly Option<int> Seed = new("--seed") { Description = "Seed of weights, shuffle and augmentation", DefaultValueFactory = _ => 0 };
    private static readonly Option<int?> Threads = new("--threads") { Description = "Engine threads (default: the core count)" };
    private static readonly Option<int> Workers = new("--workers") { Description = "Background threads preparing batches", DefaultValueFactory = _ => 1 };
    private static readonly Option<string?> Out = new("--out", "-o") { Description = "Run folder (default runs/ARCH-DATA-TIME)" };
    private static readonly Option<string?> Resume = new("--resume") { Description = "Continue from a checkpoint.safetensors" };
    private static readonly Option<int?> TrainImages = new("--train-images") { Description = "Train on this many images (a seeded random subset)" };
    private static readonly Option<bool> SmallStem = new("--small-input-stem") { Description = "ImageNet depths: 3x3 stride-1 stem, no max pool" };
    private static readonly Option<int> ImageSize = new("--image-size") { Description = "Image folders: input size", DefaultValueFactory = _ => 224 };
    private static readonly Option<bool> NoAugment = new("--no-augment") { Description = "No random crops or flips" };
    private static readonly Option<bool> Json = new("--json") { Description = "Print one JSON object at the end" };

    public static Command Create()
    {
        var cmd = new Command("train", "Train a ResNet on a data set: progress, metrics, curves, checkpoints, the best model");
        foreach (var o in new Option[] { Arch, Data, Epochs, Batch, Optimizer, Lr, Momentum, Nesterov, WeightDecay, DecayAll, Schedule, StepEpochs,
                     Milestones, Gamma, Warmup, Smoothing, Seed, Threads, Workers, Out, Resume, TrainImages, SmallStem, ImageSize, NoAugment, Json })
            cmd.Options.Add(o);
        cmd.SetAction(pr => Execute(pr));
        return cmd;
    }

    /// <summary>A training request: what the command line (or a checkpoint being resumed) asks for.</summary>
    public sealed record Request(string Arch, string Data, TrainingOptions Options, int? TrainImages, bool SmallStem, int ImageSize, bool Augment, int Workers)
    {
        public Dictionary<string, string> ToRunInfo() => new()
        {
            ["arch"] = Arch, ["data"] = Data, ["train_images"] = TrainImages?.ToString(CultureInfo.InvariantCulture) ?? "",
            ["small_input_stem"] = SmallStem ? "true" : "false", ["image_size"] = ImageSize.ToString(CultureInfo.InvariantCulture),
            ["augment"] = Augment ? "true" : "false",
        };
    }

    private static int Execute(ParseResult pr)
    {
        if (pr.GetValue(Threads) is int t)
        {
            if (t is <= 0 or > 1024) throw new CliException($"--threads must be between 1 and 1024, got {t}");
            Engine.Threads = t;
        }
        string? resume = pr.GetValue(Resume);
        if (resume is not null)
        {
            // A resumed run keeps its own options; say so rather than ignore what was asked.
            var ignored = new Option[] { Arch, Data, Batch, Optimizer, Lr, Momentum, Nesterov, WeightDecay, DecayAll, Schedule, StepEpochs, Milestones,
                Gamma, Warmup, Smoothing, Seed, TrainImages, SmallStem, ImageSize, NoAugment }
                .Where(o => pr.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToArray();
            if (ignored.Length > 0)
                throw new CliException($"--resume continues a run with the options it was started with; {string.Join(", ", ignored)} cannot change " +
                    "(only --epochs, --threads, --workers, --out and --json may be given)");
        }
        Request request = resume is null ? FromOptions(pr) : FromCheckpoint(resume, pr.GetValue(Epochs), pr.GetValue(Workers));
        string outDir = pr.GetValue(Out) ?? (resume is not null ? Path.GetDirectoryName(Path.GetFullPath(resume))!
            : Path.Combine("runs", $"{request.Arch}-{request.Data.Replace(':', '_').Replace('/', '_')}-{DateTime.Now:yyyyMMdd-HHmmss}"));
        var result = Run(request, outDir, resume, quiet: pr.GetValue(Json));
        if (pr.GetValue(Json))
            Console.WriteLine(JsonSerializer.Serialize(result, TrainingOptions.Json));
        return ExitCodes.Ok;
    }

    private static Request FromOptions(ParseResult pr)
    {
        string optimizer = pr.GetValue(Optimizer)!;
        if (optimizer is not ("sgd" or "adamw")) throw new CliException($"--optimizer must be sgd or adamw, got '{optimizer}'");
        var schedule = pr.GetValue(Schedule) switch
        {
            "cosine" => ScheduleKind.Cosine, "step" => ScheduleKind.Step, "multistep" => ScheduleKind.MultiStep, "constant" => ScheduleKind.Constant,
            var s => throw new CliException($"--schedule must be cosine, step, multistep or constant, got '{s}'"),
        };
        int[] milestones = [];
        if (pr.GetValue(Milestones) is string ms)
        {
            var parts = ms.Split(',', StringSplitOptions.TrimEntries);
            if (!parts.All(p => int.TryParse(p, out int v) && v > 0)) throw new CliException($"--milestones '{ms}' is not a list of positive epochs like 15,25");
            milestones = [.. parts.Select(int.Parse)];
        }
        if (schedule == ScheduleKind.MultiStep && milestones.Length == 0) throw new CliException("--schedule multistep needs --milestones, e.g. --milestones 15,25");
        int batch = pr.GetValue(Batch);
        if (batch is <= 0 or > 4096) throw new CliException($"--batch must be between 1 and 4096, got {batch}");
        if (pr.GetValue(TrainImages) is <= 0) throw new CliException($"--train-images must be positive, got {pr.GetValue(TrainImages)}");
        if (pr.GetValue(Workers) is <= 0 or > 64) throw new CliException($"--workers must be between 1 and 64, got {pr.GetValue(Workers)}");
        if (pr.GetValue(ImageSize) is < 8 or > 1024) throw new CliException($"--image-size must be between 8 and 1024, got {pr.GetValue(ImageSize)}");
        string arch = pr.GetValue(Arch)!;
        if (!ResNets.Architectures.Contains(arch)) throw new CliException($"unknown architecture '{arch}'; valid: {string.Join(", ", ResNets.Architectures)}");
        var options = new TrainingOptions
        {
            Epochs = pr.GetValue(Epochs) ?? 30, BatchSize = batch, Optimizer = optimizer,
            LearningRate = pr.GetValue(Lr) ?? (optimizer == "adamw" ? 1e-3 : 0.1),
            Momentum = pr.GetValue(Momentum), Nesterov = optimizer == "sgd" && pr.GetValue(Nesterov) && pr.GetValue(Momentum) > 0,
            WeightDecay = pr.GetValue(WeightDecay) ?? (optimizer == "adamw" ? 0.05 : 5e-4), DecayNormAndBias = pr.GetValue(DecayAll),
            Schedule = schedule, StepEpochs = pr.GetValue(StepEpochs), Milestones = milestones, Gamma = pr.GetValue(Gamma),
            WarmupEpochs = pr.GetValue(Warmup), LabelSmoothing = pr.GetValue(Smoothing), Seed = pr.GetValue(Seed),
        };
        try { options.Validate(); }
        catch (ArgumentException e) { throw new CliException(e.Message); }
        return new Request(arch, pr.GetValue(Data)!, options, pr.GetValue(TrainImages), pr.GetValue(SmallStem), pr.GetValue(ImageSize), !pr.GetValue(NoAugment), pr.GetValue(Workers));
    }

    private static Request FromCheckpoint(string path, int? epochs, int workers)
    {
        if (!File.Exists(path)) throw new CliException($"--resume {path}: no such file", ExitCodes.Failure);
        var (state, metadata) = Checkpoint.ReadState(path);
        var run = state.Run ?? throw new CliException($"--resume {path}: the checkpoint does not say how its data was loaded (not written by resnet train)", ExitCodes.Failure);
        string Get(string key) => run.TryGetValue(key, out var v) ? v : throw new CliException($"--resume {path}: the checkpoint lacks run information '{key}'", ExitCodes.Failure);
        var options = state.Options with { Epochs = epochs ?? state.Options.Epochs };
        return new Request(metadata.Architecture, Get("data"), options, Get("train_images") is { Length: > 0 } n ? int.Parse(n, CultureInfo.InvariantCulture) : null,
            Get("small_input_stem") == "true", int.Parse(Get("image_size"), CultureInfo.InvariantCulture), Get("augment") == "true", workers);
    }

    public sealed record Result(string RunDirectory, string Data, int TrainImages, int TestImages, int Epochs, double? FinalTestAccuracy,
        double? BestTestAccuracy, int BestEpoch, double MeanEpochSeconds, double MeanImagesPerSecond, double DataWaitSeconds, string BestModel);

    /// <summary>Builds data, model and trainer for a request and trains; also used by `resnet demo`.</summary>
    public static Result Run(Request r, string outDir, string? resume, bool quiet = false, Action<DataSpec, ResNet<float>, Trainer>? ready = null)
    {
        var spec = DataSpec.Parse(r.Data, r.ImageSize, r.Options.Seed);
        IDataset train = spec.Train;
        if (r.TrainImages is int n && n < train.Count)
        {
            var pick = SplitMix.Permutation(train.Count, SplitMix.For(r.Options.Seed, -1, 0x5B5E7))[..n];
            Array.Sort(pick);
            train = train is InMemoryDataset m ? m.Subset(pick, $"{train.Source}, {n} images") : throw new CliException("--train-images works with in-memory data sets");
        }
        var pre = spec.Preprocess;
        var model = CommonOptions.Build(r.Arch, pre.Channels, train.Classes.Count, r.SmallStem, r.Options.Seed);
        var metadata = ModelMetadata.For(model, [.. train.Classes], pre);
        var trainLoader = new DataLoader(train, r.Options.BatchSize, pre.Channels, pre.Height, pre.Width, spec.TrainTransform(r.Augment),
            shuffle: true, seed: r.Options.Seed, dropLast: train.Count >= r.Options.BatchSize, workers: r.Workers);
        var testLoader = new DataLoader(spec.Test, 500, pre.Channels, pre.Height, pre.Width, DataSpec.EvalTransform(pre, spec.Test), workers: r.Workers);
        Directory.CreateDirectory(outDir);
        var trainer = new Trainer(model, metadata, trainLoader, testLoader, r.Options, outDir) { RunInfo = r.ToRunInfo() };
        trainer.Warning = w => Console.Error.WriteLine($"resnet: warning: {w}");
        if (resume is not null)
        {
            trainer.Resume(resume);
            // Resumed into another folder: the best model so far comes along, so best.safetensors always exists.
            string from = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(resume))!, "best.safetensors");
            if (File.Exists(from) && !File.Exists(trainer.BestModelPath)) File.Copy(from, trainer.BestModelPath!);
        }
        ready?.Invoke(spec, model, trainer);
        string title = $"{r.Arch} on {spec.Name}";
        trainer.EpochCompleted += _ =>
        {
            // The curves are a convenience: a plotting failure (fonts, native library) must not end a run whose epoch is saved.
            try { CurvePlot.Write(Path.Combine(outDir, "curves.png"), trainer.History, title); }
            catch (Exception e) when (e is not OutOfMemoryException) { Console.Error.WriteLine($"resnet: warning: curves.png not drawn: {e.Message}"); }
        };
        if (!quiet)
            Console.WriteLine($"training {r.Arch} ({model.ParameterCount:N0} parameters) on {train.Source}: {train.Count} images, testing on {spec.Test.Count}; " +
                              $"{r.Options.Epochs} epochs of {trainLoader.BatchesPerEpoch} batches; {Engine.Threads} threads; run folder {outDir}" +
                              (trainer.CompletedEpochs > 0 ? $"; resuming after epoch {trainer.CompletedEpochs}" : ""));
        try
        {
            if (quiet) trainer.Run();
            else new TrainingProgress(r.Options.Epochs).Run(trainer, () => trainer.Run());
        }
        catch (TrainingDivergedException e)
        {
            throw new CliException(e.Message, ExitCodes.Failure);
        }
        var h = trainer.History;
        var last = h.Count > 0 ? h[^1] : null;
        var result = new Result(outDir, spec.Name, train.Count, spec.Test.Count, trainer.CompletedEpochs, last?.TestAccuracy,
            double.IsNaN(trainer.BestAccuracy) ? null : trainer.BestAccuracy, h.Count == 0 ? 0 : h.MaxBy(m => m.TestAccuracy ?? 0)!.Epoch,
            h.Count == 0 ? 0 : h.Average(m => m.Seconds), h.Count == 0 ? 0 : h.Average(m => m.ImagesPerSecond), h.Sum(m => m.DataWaitSeconds),
            trainer.BestModelPath!);
        if (!quiet)
            Console.WriteLine($"done: final test accuracy {100 * (last?.TestAccuracy ?? double.NaN):F2}%, best {100 * (result.BestTestAccuracy ?? double.NaN):F2}% " +
                              $"(epoch {result.BestEpoch}); {result.MeanEpochSeconds:F1} s per epoch; data wait {result.DataWaitSeconds:F2} s in all; " +
                              $"model {trainer.FinalModelPath}, best {trainer.BestModelPath}, curves {Path.Combine(outDir, "curves.png")}");
        return result;
    }
}
