using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Tests.Support;
using ResNetSharp.Training;

namespace ResNetSharp.Tests.Training;

/// <summary>AdamW, SGD and the schedules against torch.optim (tests/golden/optimizers.safetensors, float64).</summary>
public class OptimizerGoldenTests
{
    private static readonly Fixture F = Fixture.Load("optimizers");

    private static (Parameter<double> W, Parameter<double> B) Parameters()
    {
        var w = new Parameter<double>("weight", F.Double("w0"), ParameterRole.Weight);
        var b = new Parameter<double>("bias", F.Double("b0"), ParameterRole.Bias);
        return (w, b);
    }

    [Theory]
    [InlineData("adamw", true)]
    [InlineData("adamw", false)]
    [InlineData("sgd", true)]
    [InlineData("sgd", false)]
    public void TrajectoryMatchesTorch(string name, bool decayBias)
    {
        var (w, b) = Parameters();
        IOptimizer<double> opt = name == "adamw"
            ? new AdamW<double>([w, b], learningRate: 0.01, weightDecay: 0.1, decayNormAndBias: decayBias)
            : new Sgd<double>([w, b], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true, decayNormAndBias: decayBias);
        string group = decayBias ? "all" : "weights";
        for (int k = 0; k < 3; k++)
        {
            F.Double($"gw{k}").Span.CopyTo(w.Grad.Span);
            F.Double($"gb{k}").Span.CopyTo(b.Grad.Span);
            opt.Step();
            AssertClose(F.Double($"{name}_{group}_w{k}"), w.Value, $"{name} {group} step {k + 1} weight");
            AssertClose(F.Double($"{name}_{group}_b{k}"), b.Value, $"{name} {group} step {k + 1} bias");
        }
        Assert.Equal(3, opt.StepCount);
    }

    private static void AssertClose(Tensor<double> expected, Tensor<double> actual, string what)
    {
        var e = expected.Span; var a = actual.Span;
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= 1e-12 * Math.Max(1, Math.Abs(e[i])), $"{what}[{i}]: torch {e[i]:R}, ours {a[i]:R}");
    }

    public static TheoryData<string> Schedules => ["lr_step", "lr_multistep", "lr_cosine", "lr_warmup_cosine"];

    [Theory]
    [MemberData(nameof(Schedules))]
    public void ScheduleMatchesTorchSchedulers(string key)
    {
        var s = new LearningRateSchedule { BaseLearningRate = 0.1, TotalEpochs = 8, StepsPerEpoch = 4 };
        s = key switch
        {
            "lr_step" => s with { Kind = ScheduleKind.Step, StepEpochs = 3, Gamma = 0.5 },
            "lr_multistep" => s with { Kind = ScheduleKind.MultiStep, Milestones = [2, 5], Gamma = 0.1 },
            "lr_cosine" => s with { Kind = ScheduleKind.Cosine, MinLearningRate = 0.001 },
            _ => s with { Kind = ScheduleKind.Cosine, WarmupEpochs = 2, WarmupStartFactor = 0.1 },
        };
        s.Validate();
        var expected = F.Double(key).Span;
        for (int step = 0; step < expected.Length; step++)
            Assert.True(Math.Abs(expected[step] - s.At(step)) <= 1e-9, $"{key} step {step}: torch {expected[step]:R}, ours {s.At(step):R}");
    }

    [Fact]
    public void AdamWStateRoundTripsThroughRestore()
    {
        // A second optimiser given the first one's buffers and step count continues identically (what resume relies on).
        var (w1, b1) = Parameters();
        var (w2, b2) = Parameters();
        var a = new AdamW<double>([w1, b1], 0.01, weightDecay: 0.1);
        var b = new AdamW<double>([w2, b2], 0.01, weightDecay: 0.1);
        F.Double("gw0").Span.CopyTo(w1.Grad.Span); F.Double("gb0").Span.CopyTo(b1.Grad.Span);
        a.Step();
        w1.Value.Span.CopyTo(w2.Value.Span); b1.Value.Span.CopyTo(b2.Value.Span);
        foreach (var ((_, src), (_, dst)) in a.StateTensors.Zip(b.StateTensors)) src.Span.CopyTo(dst.Span);
        b.RestoreStepCount(a.StepCount);
        F.Double("gw1").Span.CopyTo(w1.Grad.Span); F.Double("gb1").Span.CopyTo(b1.Grad.Span);
        F.Double("gw1").Span.CopyTo(w2.Grad.Span); F.Double("gb1").Span.CopyTo(b2.Grad.Span);
        a.Step(); b.Step();
        Assert.True(w1.Value.Span.SequenceEqual(w2.Value.Span));
        Assert.True(b1.Value.Span.SequenceEqual(b2.Value.Span));
    }

    [Theory]
    [InlineData(ScheduleKind.MultiStep, 0, "milestones")]
    [InlineData(ScheduleKind.Cosine, 8, "warm-up")]
    public void InvalidSchedulesAreRejected(ScheduleKind kind, double warmup, string message)
    {
        var s = new LearningRateSchedule { Kind = kind, TotalEpochs = 8, WarmupEpochs = warmup };
        var e = Assert.Throws<ArgumentException>(s.Validate);
        Assert.Contains(message, e.Message);
    }
}
