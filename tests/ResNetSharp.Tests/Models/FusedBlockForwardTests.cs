using ResNetSharp.Kernels;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Tests.Models;

/// <summary>
/// A residual block runs its last BN, the add and the final ReLU as one pass (BatchNorm2d.ForwardAddRelu). Against
/// the same block's layers run one by one (BN, then the add with its ReLU), in training mode: the same bits, and the
/// same running statistics.
/// </summary>
public class FusedBlockForwardTests
{
    [Theory]
    [InlineData(8, 8, 1, ShortcutKind.Identity)]
    [InlineData(4, 8, 2, ShortcutKind.ZeroPad)]
    [InlineData(4, 8, 2, ShortcutKind.Projection)]
    public void BasicBlockMatchesItsLayersOneByOne(int inPlanes, int planes, int stride, ShortcutKind shortcut)
    {
        var fused = new BasicBlock<float>(inPlanes, planes, stride, shortcut, new Random(3));
        var layers = new BasicBlock<float>(inPlanes, planes, stride, shortcut, new Random(3));
        var x = new Tensor<float>(3, inPlanes, 9, 7);
        var rng = new Random(4);
        for (int i = 0; i < x.Span.Length; i++) x.Span[i] = (float)(rng.NextDouble() * 2 - 1);

        var y = fused.Forward(x);

        var f = layers.Conv1.Forward(x);
        f = layers.Bn1.Forward(f, relu: true);
        f = layers.Conv2.Forward(f);
        f = layers.Bn2.Forward(f);
        var sc = layers.Downsample is null ? x : layers.Downsample.Forward(x);
        var expected = new float[f.Span.Length];
        Elementwise.AddRelu<float>(f.Span, sc.Span, expected);

        Assert.Equal(f.ShapeArray, y.ShapeArray);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == y.Span[i], $"y[{i}]: layers one by one {expected[i]}, fused {y.Span[i]}");
        Assert.Equal(layers.Bn2.RunningMean.Span.ToArray(), fused.Bn2.RunningMean.Span.ToArray());
        Assert.Equal(layers.Bn2.RunningVar.Span.ToArray(), fused.Bn2.RunningVar.Span.ToArray());
    }
}
