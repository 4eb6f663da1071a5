using ResNetSharp.Data;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Training;

namespace ResNetSharp.Tests.Training;

/// <summary>The trainer on real Fashion-MNIST images (the embedded sample): memorising, determinism, resume, failures.</summary>
public sealed class TrainerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnetsharp-train-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly InMemoryDataset Sample = FashionMnist.LoadSample(train: true);

    private static InMemoryDataset Images(int n) => Sample.Subset([.. Enumerable.Range(0, n).Select(i => i * 11 % Sample.Count)]);

    private static readonly ITransform Norm = new Normalize([FashionMnist.Mean], [FashionMnist.Std]);

    private sealed record Setup(ResNet<float> Model, Trainer Trainer);

    private Setup Make(IDataset train, TrainingOptions options, string? run, IDataset? test = null, bool augment = true)
    {
        var model = ResNets.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10, Seed = options.Seed });
        ITransform t = augment ? new Compose(new RandomCrop(28, 28, 2), new RandomHorizontalFlip(), Norm) : Norm;
        var loader = new DataLoader(train, options.BatchSize, 1, 28, 28, t, shuffle: true, seed: options.Seed, dropLast: true, workers: 2);
        var testLoader = test is null ? null : new DataLoader(test, 100, 1, 28, 28, Norm);
        var meta = ModelMetadata.For(model, [.. FashionMnist.Classes], Preprocessing.FashionMnist);
        return new Setup(model, new Trainer(model, meta, loader, testLoader, options, run));
    }

    private static float[] Weights(ResNet<float> m) =>
        [.. m.NamedParameters().SelectMany(p => p.Parameter.Value.Span.ToArray()).Concat(m.NamedBuffers().SelectMany(b => b.Value.Span.ToArray()))];

    [Fact]
    public void MemorisesSixtyFourImages()
    {
        var data = Images(64);
        var options = new TrainingOptions { Epochs = 40, BatchSize = 32, LearningRate = 0.05, WeightDecay = 0, Schedule = ScheduleKind.Cosine, Seed = 3 };
        var s = Make(data, options, run: null, augment: false);
        s.Trainer.Run();
        var eval = Evaluation.Evaluate(new ResNetImageModel(s.Model, s.Trainer.Metadata), new DataLoader(data, 64, 1, 28, 28, Norm));
        Assert.Equal(1.0, eval.Accuracy);
        Assert.True(s.Trainer.History[^1].TrainLoss < 0.05, $"final training loss {s.Trainer.History[^1].TrainLoss}");
    }

    [Fact]
    public void SameSeedSameWeightsOtherSeedOtherWeights()
    {
        var data = Images(128);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 32, Seed = 1 };
        var a = Make(data, options, null); a.Trainer.Run();
        var b = Make(data, options, null); b.Trainer.Run();
        var c = Make(data, options with { Seed = 2 }, null); c.Trainer.Run();
        Assert.Equal(Weights(a.Model), Weights(b.Model));
        Assert.NotEqual(Weights(a.Model), Weights(c.Model));
    }

    [Fact]
    public void ResumedRunEndsWithTheUninterruptedRunsWeights()
    {
        var data = Images(192);
        var test = Images(100);
        var options = new TrainingOptions { Epochs = 3, BatchSize = 64, Optimizer = "sgd", Seed = 4, LabelSmoothing = 0.1, WarmupEpochs = 1 };

        var straight = Make(data, options, Path.Combine(_dir, "straight"), test);
        straight.Trainer.Run();

        // Interrupted after the first epoch: the run stops at the next epoch boundary.
        string run = Path.Combine(_dir, "interrupted");
        var first = Make(data, options, run, test);
        using var stop = new CancellationTokenSource();
        first.Trainer.EpochCompleted = m => { if (m.Epoch == 1) stop.Cancel(); };
        Assert.Throws<OperationCanceledException>(() => first.Trainer.Run(stop.Token));
        Assert.Equal(1, first.Trainer.CompletedEpochs);

        var resumed = Make(data, options, run, test);
        resumed.Trainer.Resume(Path.Combine(run, "checkpoint.safetensors"));
        Assert.Equal(1, resumed.Trainer.CompletedEpochs);
        resumed.Trainer.Run();

        Assert.Equal(Weights(straight.Model), Weights(resumed.Model));
        Assert.Equal(straight.Trainer.Optimizer.StepCount, resumed.Trainer.Optimizer.StepCount);
        Assert.Equal(straight.Trainer.History.Select(h => h.TestAccuracy), resumed.Trainer.History.Select(h => h.TestAccuracy));
        Assert.Equal(straight.Trainer.BestAccuracy, resumed.Trainer.BestAccuracy);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_dir, "straight", "best.safetensors")), File.ReadAllBytes(Path.Combine(run, "best.safetensors")));
        Assert.Equal(straight.Model.Modules().OfType<ResNetSharp.NN.BatchNorm2d<float>>().Select(b => b.NumBatchesTracked),
                     resumed.Model.Modules().OfType<ResNetSharp.NN.BatchNorm2d<float>>().Select(b => b.NumBatchesTracked));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length - 1);
    }

    [Fact]
    public void AdamWRunExtendedWithMoreEpochsEqualsTheLongerRun()
    {
        // A constant rate does not depend on the epoch count, so one epoch, then resumed with --epochs 2, is the 2-epoch run.
        var data = Images(128);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 64, Optimizer = "adamw", LearningRate = 1e-3, WeightDecay = 0.05, Seed = 5, Schedule = ScheduleKind.Constant };
        var straight = Make(data, options, Path.Combine(_dir, "a"));
        straight.Trainer.Run();
        var first = Make(data, options with { Epochs = 1 }, Path.Combine(_dir, "b"));
        first.Trainer.Run();
        var resumed = Make(data, options, Path.Combine(_dir, "b"));
        resumed.Trainer.Resume(Path.Combine(_dir, "b", "checkpoint.safetensors"));
        resumed.Trainer.Run();
        Assert.Equal(2, resumed.Trainer.CompletedEpochs);
        Assert.Equal(2 * 2, resumed.Trainer.Optimizer.StepCount);
        Assert.Equal(Weights(straight.Model), Weights(resumed.Model));
    }

    [Fact]
    public void ResumeRejectsAnotherArchitectureOrOtherOptions()
    {
        var data = Images(64);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 64, Seed = 1 };
        var s = Make(data, options, Path.Combine(_dir, "r"));
        s.Trainer.Run();
        var other = Make(data, options with { LearningRate = 0.5 }, Path.Combine(_dir, "r2"));
        var e = Assert.Throws<InvalidDataException>(() => other.Trainer.Resume(Path.Combine(_dir, "r", "checkpoint.safetensors")));
        Assert.Contains("other options", e.Message);
    }

    [Fact]
    public void ResumeRejectsOtherData()
    {
        var options = new TrainingOptions { Epochs = 2, BatchSize = 64, Seed = 1 };
        string run = Path.Combine(_dir, "d");
        var first = Make(Images(128), options with { Epochs = 1 }, run);
        first.Trainer.Run();
        var other = Make(Images(192), options, Path.Combine(_dir, "d2"));
        var e = Assert.Throws<InvalidDataException>(() => other.Trainer.Resume(Path.Combine(run, "checkpoint.safetensors")));
        Assert.Contains("Resume on the same data", e.Message);
    }

    [Fact]
    public void EvaluationBetweenEpochsLeavesTheModelAsSavedAndReported()
    {
        // The test-set evaluation runs in evaluation mode: the best model file reproduces the reported accuracy and
        // BN running statistics are not touched by test data.
        var data = Images(128);
        var test = Images(100);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 64, Seed = 2 };
        string run = Path.Combine(_dir, "eval");
        var s = Make(data, options, run, test);
        float[]? statsAfterTraining = null;
        s.Trainer.BatchCompleted = b => { if (b.Epoch == 2 && b.Batch == b.Batches) statsAfterTraining = [.. s.Model.NamedBuffers().SelectMany(x => x.Value.Span.ToArray())]; };
        s.Trainer.Run();
        Assert.Equal(statsAfterTraining, s.Model.NamedBuffers().SelectMany(x => x.Value.Span.ToArray()));
        var (saved, meta) = ModelFile.Load(Path.Combine(run, "model.safetensors"));
        var eval = Evaluation.Evaluate(new ResNetImageModel(saved, meta), new DataLoader(test, 100, 1, 28, 28, Norm));
        Assert.Equal(s.Trainer.History[^1].TestAccuracy, eval.Accuracy);
        Assert.Equal("2", meta.Provenance!["epoch"]);
    }

    private sealed class PoisonAfter(IDataset inner) : IDataset
    {
        public volatile bool Poisoned;
        public int Count => inner.Count;
        public IReadOnlyList<string> Classes => inner.Classes;
        public int Channels => inner.Channels;
        public string Source => "poisoned";
        public ImageSample Read(int index)
        {
            var s = inner.Read(index);
            return Poisoned ? s with { Pixels = [.. s.Pixels.Select(_ => float.NaN)] } : s;
        }
    }

    [Fact]
    public void DivergenceStopsWithAClearMessageAndKeepsTheLastGoodCheckpoint()
    {
        var data = new PoisonAfter(Images(64));
        var options = new TrainingOptions { Epochs = 3, BatchSize = 32, Seed = 1 };
        string run = Path.Combine(_dir, "nan");
        var s = Make(data, options, run);
        string ckpt = Path.Combine(run, "checkpoint.safetensors");
        byte[]? good = null;
        s.Trainer.EpochCompleted = _ => { good = File.ReadAllBytes(ckpt); data.Poisoned = true; };
        var e = Assert.Throws<TrainingDivergedException>(() => s.Trainer.Run());
        Assert.Contains("became NaN at epoch 2, batch 1", e.Message);
        Assert.Contains("last good checkpoint", e.Message);
        Assert.Equal(good, File.ReadAllBytes(ckpt));
        Assert.Equal(1, Checkpoint.ReadState(ckpt).State.Epoch);
    }

    [Fact]
    public void AFailedCheckpointWriteLeavesThePreviousOneIntact()
    {
        var data = Images(64);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 32, Seed = 1 };
        string run = Path.Combine(_dir, "full");
        var s = Make(data, options, run);
        string ckpt = Path.Combine(run, "checkpoint.safetensors");
        byte[]? good = null;
        s.Trainer.EpochCompleted = _ => good = File.ReadAllBytes(ckpt);
        AtomicFile.BeforeCommit = temp =>
        {
            if (temp.StartsWith(run, StringComparison.Ordinal) && temp.Contains("checkpoint.safetensors") && good is not null)
                throw new IOException("No space left on device (simulated)");
        };
        try
        {
            var e = Assert.Throws<IOException>(() => s.Trainer.Run());
            Assert.Contains("No space left", e.Message);
        }
        finally { AtomicFile.BeforeCommit = null; }
        Assert.Equal(good, File.ReadAllBytes(ckpt));
        Assert.Equal(1, Checkpoint.ReadState(ckpt).State.Epoch);
        Assert.Empty(Directory.GetFiles(run, "*.tmp"));
        // And the intact checkpoint resumes.
        var again = Make(data, options, run);
        again.Trainer.Resume(ckpt);
        again.Trainer.Run();
        Assert.Equal(2, Checkpoint.ReadState(ckpt).State.Epoch);
    }

    [Fact]
    public void TruncatedCheckpointIsAClearError()
    {
        var data = Images(64);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 64, Seed = 1 };
        string run = Path.Combine(_dir, "t");
        Make(data, options, run).Trainer.Run();
        string ckpt = Path.Combine(run, "checkpoint.safetensors");
        var bytes = File.ReadAllBytes(ckpt);
        File.WriteAllBytes(ckpt, bytes[..(bytes.Length - 100)]);
        var s = Make(data, options with { Epochs = 2 }, run);
        var e = Assert.ThrowsAny<InvalidDataException>(() => s.Trainer.Resume(ckpt));
        Assert.Contains(ckpt, e.Message);
    }
}
