using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ResNetSharp.Data;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Training;

/// <summary>Progress after one training batch.</summary>
public sealed record BatchProgress(int Epoch, int Batch, int Batches, double Loss, double Accuracy, double ImagesPerSecond, double LearningRate, double EpochSeconds);

/// <summary>The loss or the weights became NaN or infinite; the last good checkpoint was left as it was.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// Trains a ResNet for a number of epochs with an evaluation after each, writing into its run folder:
/// <list type="bullet">
/// <item>checkpoint.safetensors (+ checkpoint.json): everything needed to resume, after every epoch;</item>
/// <item>best.safetensors: the model with the best test accuracy so far, a model file for predict/eval;</item>
/// <item>model.safetensors: the final model; metrics.jsonl and metrics.csv: one row per epoch.</item>
/// </list>
/// Every file is written atomically. Results are a function of the seed and the thread count: a run resumed from a
/// checkpoint ends with the same weights as the uninterrupted run.
/// </summary>
public sealed class Trainer
{
    private readonly ResNet<float> _model;
    private readonly DataLoader _train;
    private readonly DataLoader? _test;
    private readonly IOptimizer<float> _optimizer;
    private readonly LearningRateSchedule _schedule;
    private readonly SoftmaxCrossEntropy<float> _loss;
    private CheckpointState _state;

    public Trainer(ResNet<float> model, ModelMetadata metadata, DataLoader train, DataLoader? test, TrainingOptions options, string? runDirectory)
    {
        options.Validate();
        if (train.BatchSize != options.BatchSize) throw new ArgumentException($"the loader's batch size {train.BatchSize} differs from the options' {options.BatchSize}");
        _model = model; _train = train; _test = test;
        Metadata = metadata; Options = options; RunDirectory = runDirectory;
        _optimizer = options.Optimizer == "adamw"
            ? new AdamW<float>(model.NamedParameters().Select(p => p.Parameter), options.LearningRate, options.Beta1, options.Beta2, weightDecay: options.WeightDecay, decayNormAndBias: options.DecayNormAndBias)
            : new Sgd<float>(model.NamedParameters().Select(p => p.Parameter), options.LearningRate, options.Momentum, options.WeightDecay, options.Nesterov, options.DecayNormAndBias);
        _schedule = options.MakeSchedule(train.BatchesPerEpoch);
        _loss = new SoftmaxCrossEntropy<float>(options.LabelSmoothing);
        _state = new CheckpointState
        {
            Options = options, Threads = Engine.Threads, OptimizerName = _optimizer.Name, RngSeed = options.Seed, TrainData = train.Data.Source,
        };
        if (runDirectory is not null) Directory.CreateDirectory(runDirectory);
    }

    public ModelMetadata Metadata { get; private set; }
    public TrainingOptions Options { get; }
    public string? RunDirectory { get; }
    public IOptimizer<float> Optimizer => _optimizer;
    public int CompletedEpochs => _state.Epoch;
    public IReadOnlyList<EpochMetrics> History => _state.History;
    public double BestAccuracy => _state.BestAccuracy;

    public string? CheckpointPath => RunDirectory is null ? null : Path.Combine(RunDirectory, "checkpoint.safetensors");
    public string? BestModelPath => RunDirectory is null ? null : Path.Combine(RunDirectory, "best.safetensors");
    public string? FinalModelPath => RunDirectory is null ? null : Path.Combine(RunDirectory, "model.safetensors");

    /// <summary>Saved in each checkpoint for the caller to rebuild the run on resume.</summary>
    public Dictionary<string, string>? RunInfo { get => _state.Run; set => _state = _state with { Run = value }; }

    /// <summary>Called after every batch (from the training thread).</summary>
    public Action<BatchProgress>? BatchCompleted { get; set; }
    /// <summary>Called after every epoch, once its metrics and checkpoint are written.</summary>
    public Action<EpochMetrics>? EpochCompleted { get; set; }
    /// <summary>Warnings worth showing (a resume with another thread count).</summary>
    public Action<string>? Warning { get; set; }

    /// <summary>
    /// Continues from a checkpoint: weights, BN statistics, optimiser state, epoch, schedule position and RNG state.
    /// The checkpoint's options must match this trainer's, except the epoch count, which may be raised.
    /// </summary>
    public void Resume(string checkpointPath)
    {
        var (state, metadata) = Checkpoint.ReadState(checkpointPath);
        if (metadata.Architecture != Metadata.Architecture || metadata.NumClasses != Metadata.NumClasses || metadata.InChannels != Metadata.InChannels)
            throw new InvalidDataException($"{checkpointPath}: holds a {metadata.Architecture} with {metadata.NumClasses} classes and {metadata.InChannels} input channels, " +
                $"the run trains a {Metadata.Architecture} with {Metadata.NumClasses} and {Metadata.InChannels}");
        var mine = Options with { Epochs = state.Options.Epochs, Milestones = state.Options.Milestones };
        if (mine != state.Options || !Options.Milestones.SequenceEqual(state.Options.Milestones))
            throw new InvalidDataException($"{checkpointPath}: the checkpoint was trained with other options ({JsonSerializer.Serialize(state.Options, TrainingOptions.Json)}); " +
                "resume with the same ones (only --epochs may change)");
        if (state.Epoch > Options.Epochs)
            throw new InvalidDataException($"{checkpointPath}: {state.Epoch} epochs are done already, more than the {Options.Epochs} asked for");
        if (state.TrainData != _train.Data.Source || state.GlobalStep != (long)state.Epoch * _train.BatchesPerEpoch)
            throw new InvalidDataException($"{checkpointPath}: the checkpoint was trained on {state.TrainData} " +
                $"({(state.Epoch == 0 ? 0 : state.GlobalStep / state.Epoch)} batches an epoch); this run has {_train.Data.Source} " +
                $"({_train.BatchesPerEpoch} batches an epoch). Resume on the same data");
        if (state.Options.Epochs != Options.Epochs && (Options.Schedule == ScheduleKind.Cosine || Options.WarmupEpochs > 0))
            Warning?.Invoke($"the run now lasts {Options.Epochs} epochs instead of {state.Options.Epochs}: the cosine schedule and the warm-up are " +
                $"stretched from here on, so this is not the run an uninterrupted {Options.Epochs}-epoch training would have been");
        if (state.Threads != Engine.Threads)
            Warning?.Invoke($"the checkpoint was written with {state.Threads} threads and this run uses {Engine.Threads}: results will not be bit-identical to an uninterrupted run");
        Checkpoint.Restore(checkpointPath, _model, _optimizer, state);
        _state = state with { Options = Options, Threads = Engine.Threads, Run = state.Run ?? _state.Run };
    }

    /// <summary>Trains from the current epoch to <see cref="TrainingOptions.Epochs"/>.</summary>
    public IReadOnlyList<EpochMetrics> Run(CancellationToken cancel = default)
    {
        var imageModel = new ResNetImageModel(_model, Metadata);
        while (_state.Epoch < Options.Epochs)
        {
            cancel.ThrowIfCancellationRequested();
            int epoch = _state.Epoch;
            var (trainLoss, trainAcc, seconds, wait, lr) = TrainEpoch(epoch, cancel);
            _model.Eval();
            EvaluationResult? eval = _test is null ? null : Evaluation.Evaluate(imageModel, _test);
            CheckFinite(epoch);
            var metrics = new EpochMetrics(epoch + 1, lr, trainLoss, trainAcc, eval?.Loss, eval?.Accuracy, seconds,
                _train.ImagesPerEpoch / seconds, wait);
            bool best = eval is not null && !(eval.Accuracy <= _state.BestAccuracy);
            _state = _state with
            {
                Epoch = epoch + 1,
                GlobalStep = (long)(epoch + 1) * _train.BatchesPerEpoch,
                OptimizerSteps = _optimizer.StepCount,
                RngNextEpoch = epoch + 1,
                History = [.. _state.History, metrics],
                BestAccuracy = best ? eval!.Accuracy : _state.BestAccuracy,
                BestEpoch = best ? epoch + 1 : _state.BestEpoch,
            };
            if (RunDirectory is not null)
            {
                var withProvenance = Metadata with { Provenance = Provenance(metrics) };
                // Model files first, then the checkpoint: a crash in between makes a resume redo this epoch, which
                // rewrites them identically, whereas the other order could leave them behind the checkpoint forever.
                if (best) ModelFile.Save(_model, withProvenance, BestModelPath!);
                if (_state.Epoch == Options.Epochs) ModelFile.Save(_model, withProvenance, FinalModelPath!);
                Checkpoint.Save(CheckpointPath!, _model, withProvenance, _optimizer, _state);
                WriteMetrics();
            }
            EpochCompleted?.Invoke(metrics);
        }
        // A run resumed from its last checkpoint (or into another folder) still ends with its model file.
        if (RunDirectory is not null && !File.Exists(FinalModelPath)) ModelFile.Save(_model, Metadata, FinalModelPath!);
        return _state.History;
    }

    private (double Loss, double Accuracy, double Seconds, double DataWait, double LastLr) TrainEpoch(int epoch, CancellationToken cancel)
    {
        _model.Train();
        double lossSum = 0, lr = 0;
        long correct = 0, seen = 0;
        var waitBefore = _train.WaitTime;
        var clock = Stopwatch.StartNew();
        int b = 0, batches = _train.BatchesPerEpoch;
        foreach (var batch in _train.Epoch(epoch))
        {
            cancel.ThrowIfCancellationRequested();
            long step = (long)epoch * batches + b;
            lr = _optimizer.LearningRate = _schedule.At(step);
            var logits = _model.Forward(batch.Images);
            double loss = _loss.Forward(logits, batch.Labels);
            if (!double.IsFinite(loss))
                throw new TrainingDivergedException($"the training loss became {loss} at epoch {epoch + 1}, batch {b + 1} (learning rate {lr:g4}); " +
                    (CheckpointPath is not null && File.Exists(CheckpointPath) ? $"the last good checkpoint {CheckpointPath} (epoch {_state.Epoch}) is intact; " : "") +
                    "try a lower learning rate or a warm-up");
            var predicted = Evaluation.ArgMax(logits);
            for (int i = 0; i < batch.Count; i++) if (predicted[i] == batch.Labels[i]) correct++;
            _model.ZeroGrad();
            _model.Backward(_loss.Backward());
            _optimizer.Step();
            lossSum += loss * batch.Count;
            seen += batch.Count;
            b++;
            BatchCompleted?.Invoke(new BatchProgress(epoch + 1, b, batches, lossSum / seen, (double)correct / seen, seen / clock.Elapsed.TotalSeconds, lr, clock.Elapsed.TotalSeconds));
        }
        return (lossSum / seen, (double)correct / seen, clock.Elapsed.TotalSeconds, (_train.WaitTime - waitBefore).TotalSeconds, lr);
    }

    private void CheckFinite(int epoch)
    {
        foreach (var (name, value) in _model.NamedParameters().Select(p => (p.Name, p.Parameter.Value)).Concat(_model.NamedBuffers()))
            foreach (var v in value.Span)
                if (!float.IsFinite(v))
                    throw new TrainingDivergedException($"{name} holds {v} after epoch {epoch + 1}; " +
                        (CheckpointPath is not null && File.Exists(CheckpointPath) ? $"the last good checkpoint {CheckpointPath} (epoch {_state.Epoch}) is intact; " : "") +
                        "try a lower learning rate");
    }

    private Dictionary<string, string> Provenance(EpochMetrics m)
    {
        var p = new Dictionary<string, string>
        {
            ["train_data"] = _train.Data.Source,
            ["epoch"] = m.Epoch.ToString(CultureInfo.InvariantCulture),
            ["train_accuracy"] = m.TrainAccuracy.ToString("F4", CultureInfo.InvariantCulture),
        };
        if (m.TestAccuracy is double a)
        {
            p["test_accuracy"] = a.ToString("F4", CultureInfo.InvariantCulture);
            p["test_data"] = _test!.Data.Source;
        }
        return p;
    }

    /// <summary>Rewrites metrics.jsonl and metrics.csv from the whole history (atomically, so a reader never sees half a row).</summary>
    private void WriteMetrics()
    {
        var jsonl = new StringBuilder();
        var csv = new StringBuilder("epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds,img_per_s,data_wait_s\n");
        string F(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";
        foreach (var m in _state.History)
        {
            jsonl.Append(JsonSerializer.Serialize(m, TrainingOptions.Json)).Append('\n');
            csv.Append(CultureInfo.InvariantCulture, $"{m.Epoch},{F(m.LearningRate)},{F(m.TrainLoss)},{F(m.TrainAccuracy)},{F(m.TestLoss)},{F(m.TestAccuracy)},{F(m.Seconds)},{F(m.ImagesPerSecond)},{F(m.DataWaitSeconds)}\n");
        }
        AtomicFile.WriteAllText(Path.Combine(RunDirectory!, "metrics.jsonl"), jsonl.ToString());
        AtomicFile.WriteAllText(Path.Combine(RunDirectory!, "metrics.csv"), csv.ToString());
    }
}
