using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.NN;

/// <summary>Every layer's backward against central finite differences, in double (GradCheck: h = 1e-6, tolerance 1e-6).</summary>
public class GradientCheckTests
{
    private static void AssertPasses(Module<double> m, int[] shape, bool checkInput = true, int samples = 40)
    {
        var failures = GradCheck.Check(m, shape, checkInput: checkInput, samplesPerTensor: samples);
        Assert.True(failures.Count == 0, $"{m.Kind}: {failures.Count} mismatches, first: {string.Join("; ", failures.Take(3))}");
    }

    [Theory]
    [InlineData(3, 4, 3, 2, 1, true, 7, 6)]
    [InlineData(5, 6, 1, 1, 0, false, 4, 5)]
    [InlineData(2, 3, 7, 2, 3, false, 11, 9)]
    [InlineData(4, 4, 3, 1, 1, true, 5, 5)]
    [InlineData(4, 8, 1, 2, 0, false, 7, 7)]
    [InlineData(1, 1, 3, 3, 0, true, 3, 3)]
    public void Conv2d(int ic, int oc, int k, int stride, int pad, bool bias, int h, int w) =>
        AssertPasses(new Conv2d<double>(ic, oc, k, stride, pad, bias, new Random(3)), [2, ic, h, w]);

    [Fact]
    public void BatchNorm2dTraining()
    {
        var bn = new BatchNorm2d<double>(3);
        RandomizeAffine(bn);
        AssertPasses(bn, [4, 3, 3, 5]);
    }

    [Fact]
    public void BatchNorm2dEvaluation()
    {
        var bn = new BatchNorm2d<double>(3);
        RandomizeAffine(bn);
        bn.RunningMean.Span.Fill(0.3);
        bn.RunningVar.Span.Fill(1.7);
        bn.Eval();
        AssertPasses(bn, [2, 3, 4, 4]);
    }

    [Fact]
    public void ReLU() => AssertPasses(new ReLU<double>(), [2, 3, 4, 5]);

    [Theory]
    [InlineData(3, 2, 1, 9, 8)]
    [InlineData(2, 2, 0, 6, 6)]
    [InlineData(3, 1, 1, 5, 4)]
    public void MaxPool2d(int k, int s, int p, int h, int w) => AssertPasses(new MaxPool2d<double>(k, s, p), [2, 3, h, w]);

    [Fact]
    public void AdaptiveAvgPool2d() => AssertPasses(new AdaptiveAvgPool2d<double>(), [2, 5, 3, 4]);

    [Fact]
    public void Flatten() => AssertPasses(new Flatten<double>(), [2, 3, 2, 2]);

    [Fact]
    public void Linear() => AssertPasses(new Linear<double>(5, 4, true, new Random(2)), [3, 5]);

    [Fact]
    public void ZeroPadShortcut() => AssertPasses(new ZeroPadShortcut<double>(4, 8, 2), [2, 4, 5, 6]);

    [Theory]
    [InlineData(ShortcutKind.Identity, 4, 4, 1)]
    [InlineData(ShortcutKind.Projection, 4, 8, 2)]
    [InlineData(ShortcutKind.ZeroPad, 4, 8, 2)]
    [InlineData(ShortcutKind.None, 4, 8, 2)]
    public void BasicBlock(ShortcutKind shortcut, int inPlanes, int planes, int stride)
    {
        var block = new BasicBlock<double>(inPlanes, planes, stride, shortcut, new Random(5));
        block.AssignNames("block");
        AssertPasses(block, [2, inPlanes, 6, 5], samples: 25);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Bottleneck(bool strideOnFirst1x1)
    {
        var block = new Bottleneck<double>(8, 4, 2, ShortcutKind.Projection, new Random(6), strideOnFirst1x1);
        block.AssignNames("block");
        AssertPasses(block, [2, 8, 5, 6], samples: 25);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void SoftmaxCrossEntropy(double smoothing)
    {
        var rng = new Random(4);
        var logits = GradCheck.Random(rng, 5, 7);
        logits.Span[3] = 40;  // a large logit: the row maximum keeps exp finite
        int[] targets = [0, 3, 6, 2, 2];
        var loss = new SoftmaxCrossEntropy<double>(smoothing);
        loss.Forward(logits, targets);
        var analytic = loss.Backward().Clone();
        for (int i = 0; i < logits.Length; i++)
        {
            double v = logits.Span[i];
            logits.Span[i] = v + GradCheck.Step; double plus = loss.Forward(logits, targets);
            logits.Span[i] = v - GradCheck.Step; double minus = loss.Forward(logits, targets);
            logits.Span[i] = v;
            Assert.Equal((plus - minus) / (2 * GradCheck.Step), analytic.Span[i], 1e-7);
        }
    }

    /// <summary>A whole network: input, every conv and fc weight and every BN γ and β of resnet20 in training mode.</summary>
    [Fact]
    public void WholeResNet20WithCrossEntropy()
    {
        var model = ResNets.Create<double>("resnet20", new ResNetOptions { InChannels = 2, Seed = 11 });
        model.ComputeInputGradient = true;
        foreach (var bn in model.Modules().OfType<BatchNorm2d<double>>()) RandomizeAffine(bn);
        var x = GradCheck.Random(new Random(12), 3, 2, 8, 8);
        var failures = GradCheck.CheckWithLoss(model, x, [1, 7, 4], labelSmoothing: 0.1, seed: 13, samplesPerTensor: 4);
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches, first: {string.Join("; ", failures.Take(3))}");
    }

    /// <summary>An ImageNet-style network with bottlenecks, projections and the max-pool stem.</summary>
    [Fact]
    public void WholeBottleneckNetworkWithCrossEntropy()
    {
        var rng = new Random(21);
        var model = new Sequential<double>(
            new Conv2d<double>(2, 8, 3, 2, 1, rng: rng), new BatchNorm2d<double>(8), new ReLU<double>(), new MaxPool2d<double>(3, 2, 1),
            new Bottleneck<double>(8, 2, 1, ShortcutKind.Projection, rng),
            new Bottleneck<double>(8, 2, 1, ShortcutKind.Identity, rng),
            new Bottleneck<double>(8, 4, 2, ShortcutKind.Projection, rng),
            new AdaptiveAvgPool2d<double>(), new Flatten<double>(), new Linear<double>(16, 5, true, rng));
        model.AssignNames();
        foreach (var bn in model.Modules().OfType<BatchNorm2d<double>>()) RandomizeAffine(bn);
        var x = GradCheck.Random(new Random(22), 3, 2, 13, 11);
        var failures = GradCheck.CheckWithLoss(model, x, [4, 0, 2], labelSmoothing: 0, seed: 23, samplesPerTensor: 6);
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches, first: {string.Join("; ", failures.Take(3))}");
    }

    /// <summary>The checker itself must catch a wrong gradient, or every test above could pass vacuously.</summary>
    [Fact]
    public void CheckerDetectsAWrongGradient()
    {
        var conv = new Conv2d<double>(2, 3, 3, 1, 1, true, new Random(1));
        var failures = GradCheck.Check(conv, [1, 2, 4, 4], samplesPerTensor: 100, tamper: m => ((Conv2d<double>)m).Weight.Grad.Span[5] += 1e-3);
        Assert.Contains(failures, f => f.StartsWith("weight[5]"));
        Assert.Single(failures);
    }

    /// <summary>In float32 the same check fails: the finite differences drown in rounding, which is why it runs in double.</summary>
    [Fact]
    public void Float32FiniteDifferencesAreTooCoarse()
    {
        var conv = new Conv2d<float>(3, 4, 3, 1, 1, false, new Random(1));
        var x = new Tensor<float>(1, 3, 5, 5);
        var rng = new Random(2);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        var r = conv.Forward(x).Clone();
        conv.ZeroGrad();
        conv.Backward(r);
        float Loss() { var y = conv.Forward(x).Span; float s = 0; for (int i = 0; i < y.Length; i++) s += y[i] * r.Span[i]; return s; }
        int bad = 0;
        for (int i = 0; i < 20; i++)
        {
            float w = conv.Weight.Value.Span[i];
            conv.Weight.Value.Span[i] = w + 1e-5f; float plus = Loss();
            conv.Weight.Value.Span[i] = w - 1e-5f; float minus = Loss();
            conv.Weight.Value.Span[i] = w;
            double numeric = (plus - minus) / 2e-5, a = conv.Weight.Grad.Span[i];
            if (Math.Abs(a - numeric) > GradCheck.Tolerance * Math.Max(1, Math.Abs(a))) bad++;
        }
        Assert.True(bad > 10, $"only {bad} of 20 float32 differences disagreed");
    }

    private static void RandomizeAffine(BatchNorm2d<double> bn)
    {
        var rng = new Random(bn.Channels * 31 + 7);
        for (int c = 0; c < bn.Channels; c++)
        {
            bn.Weight.Value.Span[c] = 0.5 + rng.NextDouble();
            bn.Bias.Value.Span[c] = rng.NextDouble() - 0.5;
        }
    }
}
