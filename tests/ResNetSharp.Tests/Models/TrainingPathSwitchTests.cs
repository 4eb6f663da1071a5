using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Models;

/// <summary>
/// Tests that flip a process-wide path switch (Conv2dKernel.UsePackedFloatPath, NchwConv.UseWinograd) run alone: any
/// test running beside them would take the other path for a while, and a test that compares two runs of its own
/// (a resumed training against an uninterrupted one) would see them differ.
/// </summary>
[CollectionDefinition(nameof(ProcessWideSwitches), DisableParallelization = true)]
public sealed class ProcessWideSwitches;

/// <summary>The training step on the fast paths against the same step with them switched off.</summary>
[Collection(nameof(ProcessWideSwitches))]
public class TrainingPathSwitchTests
{
    /// <summary>
    /// A whole training step of resnet20 on the packed float convolutions (shifted views, stacked dW) against the plain
    /// im2col + GEMM float path: logits, loss and every parameter gradient.
    /// </summary>
    [Fact]
    public void PackedTrainingPathMatchesThePlainOne()
    {
        var (x, targets) = Batch(6, 14, 10, seed: 5);
        var plain = WithSwitch(on => Conv2dKernel.UsePackedFloatPath = on, false, () => ResNet20Step(x, targets, seed: 4));
        var packed = ResNet20Step(x, targets, seed: 4);
        AssertSameStep(plain, packed);
    }

    /// <summary>
    /// A training step of resnet20 with the forward and dx of its 32- and 64-channel layers by Winograd (AVX-512; 10x9
    /// images take F(4x4,3x3), 5x5 ones F(2x2,3x3)), and their weight gradients too, against the direct convolutions:
    /// logits, loss and every parameter gradient. Its 16-channel 20x18 layers run NarrowConv3x3 either way.
    /// </summary>
    [Fact]
    public void WinogradTrainingStepMatchesTheDirectOne()
    {
        var (x, targets) = Batch(5, 20, 18, seed: 15);
        var direct = WithSwitch(on => NchwConv.UseWinograd = on, false, () => ResNet20Step(x, targets, seed: 6));
        var winograd = ResNet20Step(x, targets, seed: 6);
        AssertSameStep(direct, winograd);
        if (NchwWinograd.Supports(new ConvGeometry(16, 20, 18, 16, 3, 3, 1, 1)))
            Assert.False(direct.Logits.Span.SequenceEqual(winograd.Logits.Span), "Winograd did not run: the logits are bit-identical");
    }

    private static (Tensor<float> X, int[] Targets) Batch(int n, int h, int w, int seed)
    {
        var x = new Tensor<float>(n, 2, h, w);
        var rng = new Random(seed);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        return (x, Enumerable.Range(0, n).Select(i => (i * 7 + seed) % 10).ToArray());
    }

    // Runs body with a switch set to value, and sets it back on afterwards (its default).
    private static TResult WithSwitch<TResult>(Action<bool> set, bool value, Func<TResult> body)
    {
        set(value);
        try { return body(); }
        finally { set(true); }
    }

    private static (Tensor<float> Logits, double Loss, List<Tensor<float>> Grads) ResNet20Step(Tensor<float> x, int[] targets, int seed)
    {
        var model = ResNets.Create("resnet20", new ResNetOptions { InChannels = 2, Seed = seed });
        model.ComputeInputGradient = true;
        var loss = new SoftmaxCrossEntropy<float>();
        var logits = model.Forward(x).Clone();
        double l = loss.Forward(logits, targets);
        model.ZeroGrad();
        model.Backward(loss.Backward());
        return (logits, l, model.NamedParameters().Select(p => p.Parameter.Grad.Clone()).ToList());
    }

    private static void AssertSameStep((Tensor<float> Logits, double Loss, List<Tensor<float>> Grads) expected,
        (Tensor<float> Logits, double Loss, List<Tensor<float>> Grads) actual)
    {
        Compare.Close(expected.Logits, actual.Logits, Compare.Forward, "logits");
        Assert.Equal(expected.Loss, actual.Loss, 1e-4);
        for (int i = 0; i < expected.Grads.Count; i++) Compare.Close(expected.Grads[i], actual.Grads[i], Compare.Gradient, $"gradient {i}");
    }
}
