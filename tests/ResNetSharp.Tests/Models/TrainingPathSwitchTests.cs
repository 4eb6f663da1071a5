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
        var x = new Tensor<float>(6, 2, 14, 10);
        var rng = new Random(5);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        int[] targets = [0, 3, 9, 1, 1, 7];
        (Tensor<float> Logits, double Loss, List<Tensor<float>> Grads) Step(bool packed)
        {
            ResNetSharp.Kernels.Conv2dKernel.UsePackedFloatPath = packed;
            try
            {
                var model = ResNets.Create("resnet20", new ResNetOptions { InChannels = 2, Seed = 4 });
                model.ComputeInputGradient = true;
                var loss = new SoftmaxCrossEntropy<float>();
                var logits = model.Forward(x).Clone();
                double l = loss.Forward(logits, targets);
                model.ZeroGrad();
                model.Backward(loss.Backward());
                return (logits, l, model.NamedParameters().Select(p => p.Parameter.Grad.Clone()).ToList());
            }
            finally { ResNetSharp.Kernels.Conv2dKernel.UsePackedFloatPath = true; }
        }
        var plain = Step(false);
        var packed = Step(true);
        Compare.Close(plain.Logits, packed.Logits, Compare.Forward, "logits");
        Assert.Equal(plain.Loss, packed.Loss, 1e-4);
        for (int i = 0; i < plain.Grads.Count; i++) Compare.Close(plain.Grads[i], packed.Grads[i], Compare.Gradient, $"gradient {i}");
    }

    /// <summary>
    /// A training step of resnet20 with the 32- and 64-channel stages' forward and dx on Winograd F(2x2,3x3) (AVX-512)
    /// against the direct convolutions: logits, loss and every parameter gradient.
    /// </summary>
    [Fact]
    public void WinogradTrainingStepMatchesTheDirectOne()
    {
        var x = new Tensor<float>(5, 2, 20, 18);
        var rng = new Random(15);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        int[] targets = [2, 3, 9, 0, 7];
        (Tensor<float> Logits, double Loss, List<Tensor<float>> Grads) Step(bool winograd)
        {
            NchwConv.UseWinograd = winograd;
            try
            {
                var model = ResNets.Create("resnet20", new ResNetOptions { InChannels = 2, Seed = 6 });
                model.ComputeInputGradient = true;
                var loss = new SoftmaxCrossEntropy<float>();
                var logits = model.Forward(x).Clone();
                double l = loss.Forward(logits, targets);
                model.ZeroGrad();
                model.Backward(loss.Backward());
                return (logits, l, model.NamedParameters().Select(p => p.Parameter.Grad.Clone()).ToList());
            }
            finally { NchwConv.UseWinograd = true; }
        }
        var direct = Step(false);
        var winograd = Step(true);
        Compare.Close(direct.Logits, winograd.Logits, Compare.Forward, "logits");
        Assert.Equal(direct.Loss, winograd.Loss, 1e-4);
        for (int i = 0; i < direct.Grads.Count; i++) Compare.Close(direct.Grads[i], winograd.Grads[i], Compare.Gradient, $"gradient {i}");
        if (NchwWinograd.Supports(new ConvGeometry(32, 10, 9, 32, 3, 3, 1, 1)))
            Assert.False(direct.Logits.Span.SequenceEqual(winograd.Logits.Span), "Winograd did not run: the logits are bit-identical");
    }
}
