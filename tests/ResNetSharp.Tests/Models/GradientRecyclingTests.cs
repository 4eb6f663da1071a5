using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Tests.Models;

/// <summary>
/// A model's backward pass recycles its gradient tensors (GradientBuffers). Against the same step with every layer on
/// its own tensor: the same bits for every parameter gradient and the input gradient, in each kind of block (identity
/// and zero-pad shortcuts, projections, bottlenecks, plain), and again on a second pass over the recycled buffers.
/// </summary>
[Collection(nameof(ProcessWideSwitches))]
public class GradientRecyclingTests
{
    [Theory]
    [InlineData("resnet20", 1, 12)]
    [InlineData("plain20", 1, 12)]
    [InlineData("resnet18", 3, 40)]
    [InlineData("resnet50", 3, 36)]
    public void RecycledStepMatchesOwnTensorsBitForBit(string architecture, int channels, int size)
    {
        var x = new Tensor<float>(2, channels, size, size);
        var rng = new Random(7);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)(rng.NextDouble() * 2 - 1);
        int[] targets = [3, 8];

        GradientBuffers.Enabled = false;
        List<float[]> own;
        try { own = Step(architecture, channels, x, targets, passes: 1); }
        finally { GradientBuffers.Enabled = true; }
        var recycled = Step(architecture, channels, x, targets, passes: 2);

        Assert.Equal(own.Count, recycled.Count);
        for (int t = 0; t < own.Count; t++)
            for (int i = 0; i < own[t].Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(own[t][i]) == BitConverter.SingleToInt32Bits(recycled[t][i]),
                    $"{architecture}: gradient {t} (of {own.Count}; the last is the input's) element {i}: own tensors {own[t][i]}, recycled {recycled[t][i]}");
    }

    // The parameter gradients, then the input gradient, after `passes` training-mode passes over the same batch (the
    // same batch statistics each time), gradients zeroed before each.
    private static List<float[]> Step(string architecture, int channels, Tensor<float> x, int[] targets, int passes)
    {
        var model = ResNets.Create<float>(architecture, new ResNetOptions { InChannels = channels, NumClasses = 10, Seed = 2 });
        model.ComputeInputGradient = true;
        var loss = new SoftmaxCrossEntropy<float>();
        Tensor<float> dx = null!;
        for (int pass = 0; pass < passes; pass++)
        {
            loss.Forward(model.Forward(x), targets);
            model.ZeroGrad();
            dx = model.Backward(loss.Backward());
        }
        return [.. model.NamedParameters().Select(p => p.Parameter.Grad.Span.ToArray()), dx.Span.ToArray()];
    }
}
