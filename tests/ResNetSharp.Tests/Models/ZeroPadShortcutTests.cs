using ResNetSharp.Models;
using ResNetSharp.Tensors;

namespace ResNetSharp.Tests.Models;

/// <summary>
/// The option-A shortcut in float (rows subsampled and scattered back 16 columns at a time on AVX-512) against the
/// same layer in double (element by element), at widths around the vector: forward, Backward and the accumulating
/// AddInputGradient that residual blocks use. Copies and exact sums, so the two agree to the bit.
/// </summary>
public class ZeroPadShortcutTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 7)]
    [InlineData(28, 28)]   // resnet20's first downsampling
    [InlineData(5, 31)]    // 16 sampled columns
    [InlineData(4, 32)]
    [InlineData(3, 33)]    // 17
    [InlineData(6, 65)]
    public void FloatMatchesDouble(int h, int w)
    {
        var rng = new Random(h * 97 + w);
        int[] inShape = [2, 3, h, w];
        var x = new Tensor<float>(inShape);
        for (int i = 0; i < x.Span.Length; i++) x.Span[i] = rng.Next(-64, 65) / 8f;
        var f = new ZeroPadShortcut<float>(3, 8, 2);
        var d = new ZeroPadShortcut<double>(3, 8, 2);
        var y = f.Forward(x);
        var yd = d.Forward(ToDouble(x));
        AssertSame(yd, y, "y");

        var dy = new Tensor<float>(y.ShapeArray);
        for (int i = 0; i < dy.Span.Length; i++) dy.Span[i] = rng.Next(-64, 65) / 8f;
        AssertSame(d.Backward(ToDouble(dy)), f.Backward(dy), "dx");

        // Accumulated onto an existing gradient: sampled pixels get the sum, the others keep their value.
        var acc = new Tensor<float>(inShape);
        for (int i = 0; i < acc.Span.Length; i++) acc.Span[i] = rng.Next(-64, 65) / 8f;
        var accD = ToDouble(acc);
        f.AddInputGradient(dy, acc);
        d.AddInputGradient(ToDouble(dy), accD);
        AssertSame(accD, acc, "dx accumulated");
    }

    private static Tensor<double> ToDouble(Tensor<float> t)
    {
        var r = new Tensor<double>(t.ShapeArray);
        for (int i = 0; i < t.Span.Length; i++) r.Span[i] = t.Span[i];
        return r;
    }

    private static void AssertSame(Tensor<double> expected, Tensor<float> actual, string what)
    {
        Assert.Equal(expected.ShapeArray, actual.ShapeArray);
        for (int i = 0; i < actual.Span.Length; i++)
            Assert.True(actual.Span[i] == (float)expected.Span[i], $"{what}[{i}]: float {actual.Span[i]}, double {expected.Span[i]}");
    }
}
