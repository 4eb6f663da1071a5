using System.Text.Json;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Tensors;

namespace ResNetSharp.Training;

/// <summary>The per-epoch summary the trainer logs and keeps in checkpoints.</summary>
public sealed record EpochMetrics(int Epoch, double LearningRate, double TrainLoss, double TrainAccuracy, double? TestLoss,
    double? TestAccuracy, double Seconds, double ImagesPerSecond, double DataWaitSeconds);

/// <summary>The training state besides the tensors: where the run is, how it was configured, what it has seen.</summary>
public sealed record CheckpointState
{
    public const string CurrentFormat = "resnetsharp-checkpoint/1";
    public string Format { get; init; } = CurrentFormat;
    /// <summary>Epochs completed; training resumes at this epoch (0-based).</summary>
    public int Epoch { get; init; }
    public long GlobalStep { get; init; }
    /// <summary>Engine threads of the run: results are bit-identical only at the same count.</summary>
    public int Threads { get; init; }
    public required TrainingOptions Options { get; init; }
    public string OptimizerName { get; init; } = "sgd";
    public long OptimizerSteps { get; init; }
    /// <summary>The data pipeline's random state: every draw is keyed by (seed, epoch, sample), so the seed and the epoch are all of it.</summary>
    public int RngSeed { get; init; }
    public int RngNextEpoch { get; init; }
    public double BestAccuracy { get; init; } = double.NaN;
    public int BestEpoch { get; init; }
    public List<EpochMetrics> History { get; init; } = [];
    public string? TrainData { get; init; }
    /// <summary>What the caller needs to rebuild the run on resume (the command line's data spec …), free-form.</summary>
    public Dictionary<string, string>? Run { get; init; }
}

/// <summary>
/// A checkpoint is one safetensors file, written atomically: the model's state dict (weights, BN statistics),
/// the optimiser's buffers as "optimizer.{index}.{name}", and in "__metadata__" the model metadata and the
/// <see cref="CheckpointState"/> as JSON. A JSON copy of the state is written beside it for people to read.
/// </summary>
public static class Checkpoint
{
    public const string StateKey = "checkpoint";
    private const string OptimizerPrefix = "optimizer.";

    public static void Save(string path, ResNet<float> model, ModelMetadata metadata, IOptimizer<float> optimizer, CheckpointState state)
    {
        var tensors = StateDict.From(model);
        foreach (var (name, value) in optimizer.StateTensors)
            tensors.Add(new(OptimizerPrefix + name, SafeTensor.FromFloat32(value.Span, value.ShapeArray)));
        string json = JsonSerializer.Serialize(state, TrainingOptions.Json);
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { [ModelFile.MetadataKey] = metadata.ToJson(), [StateKey] = json });
        AtomicFile.WriteAllText(Path.ChangeExtension(path, ".json"),
            JsonSerializer.Serialize(JsonDocument.Parse(json), new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The state and model metadata of a checkpoint file, without its tensors.</summary>
    public static (CheckpointState State, ModelMetadata Metadata) ReadState(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such checkpoint");
        using var s = File.OpenRead(path);
        var header = SafeTensors.ReadHeader(s, path);
        if (!header.Metadata.TryGetValue(StateKey, out var json) || !header.Metadata.TryGetValue(ModelFile.MetadataKey, out var meta))
            throw new InvalidDataException($"{path}: not a ResNetSharp training checkpoint (no checkpoint state in its metadata)");
        CheckpointState? state;
        try { state = JsonSerializer.Deserialize<CheckpointState>(json, TrainingOptions.Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: the checkpoint state is not valid JSON ({e.Message})"); }
        if (state is null || state.Format != CheckpointState.CurrentFormat)
            throw new InvalidDataException($"{path}: checkpoint format '{state?.Format}', expected '{CheckpointState.CurrentFormat}'");
        return (state, ModelMetadata.FromJson(meta, path));
    }

    /// <summary>Copies the checkpoint's weights, BN statistics and optimiser state into <paramref name="model"/> and <paramref name="optimizer"/>.</summary>
    public static void Restore(string path, ResNet<float> model, IOptimizer<float> optimizer, CheckpointState state)
    {
        var contents = SafeTensors.Read(path);
        var modelState = contents.Tensors.Where(kv => !kv.Key.StartsWith(OptimizerPrefix, StringComparison.Ordinal)).ToDictionary();
        StateDict.Load(model, modelState);
        if (optimizer.Name != state.OptimizerName)
            throw new InvalidDataException($"{path}: the checkpoint's optimiser is {state.OptimizerName}, the run uses {optimizer.Name}");
        foreach (var (name, value) in optimizer.StateTensors)
        {
            if (!contents.Tensors.TryGetValue(OptimizerPrefix + name, out var t))
                throw new InvalidDataException($"{path}: optimiser state {OptimizerPrefix}{name} is missing");
            if (!t.Shape.AsSpan().SequenceEqual(value.Shape))
                throw new InvalidDataException($"{path}: {OptimizerPrefix}{name} has shape {Tensor<float>.ShapeString(t.Shape)}, expected {Tensor<float>.ShapeString(value.Shape)}");
            t.ToFloat32().CopyTo(value.Span);
        }
        optimizer.RestoreStepCount(state.OptimizerSteps);
    }
}
