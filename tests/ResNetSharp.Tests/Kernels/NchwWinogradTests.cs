using System.Runtime.Intrinsics.X86;
using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.Kernels.Reference;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// The training path's NCHW Winograd F(2x2,3x3) against the direct reference. Widths reach every tile numbering
/// (4 slots per tile row up to 8 output columns, 8 up to 16, 16 up to 32, 32 beyond), with odd sizes (a last tile
/// half outside), one pixel, channel counts past the micro-kernel's tiles and its 512-value reduction chunks, and
/// blocks of several images.
/// </summary>
public unsafe class NchwWinogradTests
{
    public static TheoryData<int, int, int, int, int, int> Shapes()
    {
        var data = new TheoryData<int, int, int, int, int, int>();
        (int, int, int, int, int)[] f2 =
        [
            (1, 1, 1, 1, 1),       // one pixel, one channel
            (2, 3, 5, 7, 4),       // 4 slots, odd sizes
            (3, 16, 8, 8, 16),     // 4 slots, four whole tile rows per group
            (1, 5, 9, 16, 7),      // 8 slots, exactly full
            (5, 16, 14, 14, 16),   // resnet20's second stage shape, images in blocks
            (2, 16, 28, 28, 16),   // 16 slots: the second half of each row past the image
            (1, 2, 33, 40, 3),     // 32 slots, odd height
            (7, 32, 7, 7, 64),     // resnet20's third stage shape, several images per block
            (1, 17, 6, 13, 65),    // 65 output channels: a short last row tile
            (1, 520, 4, 4, 8),     // a reduction longer than one 512-value chunk
            (2, 64, 56, 56, 64),   // several chunks per block
        ];
        (int, int, int, int, int)[] f4 =
        [
            (1, 1, 5, 5, 1),       // F(4x4): two tiles per row, 4 slots
            (2, 3, 9, 9, 4),       // 3 tiles per row, a last tile one column wide
            (3, 16, 14, 14, 16),   // resnet20's second stage: 4 slots, four tile rows per group
            (2, 5, 17, 29, 7),     // 8 slots, odd sizes
            (2, 16, 28, 28, 16),   // resnet20's first stage
            (1, 2, 30, 64, 3),     // 16 slots, exactly full
            (1, 3, 19, 70, 5),     // 32 slots, the second group of a row short
            (1, 17, 12, 12, 65),
            (1, 520, 9, 9, 8),     // a reduction longer than one 512-value chunk
            (2, 64, 56, 56, 64),   // several chunks per block
        ];
        foreach (var (n, ic, h, w, oc) in f2) data.Add(2, n, ic, h, w, oc);
        foreach (var (n, ic, h, w, oc) in f4) data.Add(4, n, ic, h, w, oc);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesDirectConvolution(int tile, int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        if (!NchwWinograd.Supports(g)) { Assert.False(Avx512F.IsSupported, "AVX-512 is here but the path refused a 3x3 stride-1 convolution"); return; }
        var rng = new Random(ic * 31 + h * 7 + oc);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc);
        var yRef = new float[batch * g.OutImage];
        Conv2dReference.Forward<float>(g, batch, x, wt, bias, yRef);

        var u = new float[NchwWinograd.WeightSize(oc, ic, tile)];
        var y = new float[yRef.Length];
        Array.Fill(y, float.NaN);   // every output must be written
        fixed (float* xp = x) fixed (float* wp = wt) fixed (float* up = u) fixed (float* bp = bias) fixed (float* yp = y)
        {
            NchwWinograd.TransformWeights(wp, oc, ic, up, tile);
            NchwWinograd.Forward(g, batch, xp, up, bp, yp, tile);
        }
        double scale = yRef.Max(Math.Abs);
        for (int i = 0; i < y.Length; i++)
            Assert.True(Math.Abs(yRef[i] - y[i]) <= 1e-5 * scale * Math.Sqrt(9 * ic), $"y[{i}]: expected {yRef[i]}, got {y[i]}");
    }

    /// <summary>
    /// Shapes whose M (points·IC·OC) passes 1 MB, so that one M is shared by the threads: 2 chunks of 2 and 1 lane
    /// panels (F(4x4), 80 output channels in two panels) and 200 output channels (a short last panel) with F(2x2).
    /// </summary>
    public static TheoryData<int, int, int, int, int, int> WeightGradientShapes() => new()
    {
        { 4, 3, 128, 20, 20, 80 },
        { 2, 1, 96, 7, 7, 200 },
    };

    /// <summary>
    /// The weight gradient by Winograd (F(tile x tile, 3x3) transposed) against the direct reference, on the same
    /// shapes: it reads dy with the output transform's tile numbering, so every numbering and edge is covered. dw
    /// starts non-zero, since the result is added to it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    [MemberData(nameof(WeightGradientShapes))]
    public void WeightGradientMatchesDirectSum(int tile, int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        if (!NchwWinograd.Supports(g)) { Assert.False(Avx512F.IsSupported, "AVX-512 is here but the path refused a 3x3 stride-1 convolution"); return; }
        var rng = new Random(ic * 37 + h * 5 + oc);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var dy = R(batch * g.OutImage); var start = R(g.WeightSize);
        var dwRef = start.Select(v => (double)v).ToArray();   // the reference sums in double
        Conv2dReference.Backward<double>(g, batch, x.Select(v => (double)v).ToArray(), new double[g.WeightSize], dy.Select(v => (double)v).ToArray(),
            null, dwRef, null);
        var dw = (float[])start.Clone();
        fixed (float* xp = x) fixed (float* dyp = dy) fixed (float* dwp = dw)
            NchwWinograd.WeightGradient(g, batch, xp, dyp, dwp, tile);
        // Each entry sums batch·H·W products of values in [−1, 1]: the rounding grows with the square root of that.
        double tol = 2e-5 * Math.Sqrt(batch * h * w) * (tile == 4 ? 4 : 1);
        for (int i = 0; i < dw.Length; i++)
            Assert.True(Math.Abs(dwRef[i] - dw[i]) <= tol, $"dw[{i}]: expected {dwRef[i]}, got {dw[i]} (tolerance {tol})");
    }

    /// <summary>The input-gradient weights (points 0 and 3 swapped, transposed) against the transform of a flipped, transposed copy.</summary>
    [Theory]
    [InlineData(2, 3, 5)]
    [InlineData(2, 16, 16)]
    [InlineData(4, 33, 17)]
    public void InputGradientWeightsAreTheFlippedKernelsTransform(int tile, int oc, int ic)
    {
        if (!Avx512F.IsSupported) return;   // the transforms use Vector512
        var rng = new Random(oc * 100 + ic);
        var w = Enumerable.Range(0, oc * ic * 9).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var flipped = new float[w.Length];   // w'[i, o, t] = w[o, i, 8 − t]
        for (int o = 0; o < oc; o++)
            for (int i = 0; i < ic; i++)
                for (int t = 0; t < 9; t++) flipped[(i * oc + o) * 9 + t] = w[(o * ic + i) * 9 + 8 - t];
        var expected = new float[NchwWinograd.WeightSize(ic, oc, tile)];
        var actual = new float[expected.Length];
        fixed (float* wp = w) fixed (float* fp = flipped) fixed (float* ep = expected) fixed (float* ap = actual)
        {
            NchwWinograd.TransformWeights(fp, ic, oc, ep, tile);
            NchwWinograd.TransformWeights(wp, oc, ic, ap, tile, forInputGradient: true);
        }
        for (int j = 0; j < expected.Length; j++)
            Assert.True(Math.Abs(expected[j] - actual[j]) <= 1e-6, $"u[{j}]: expected {expected[j]}, got {actual[j]}");
    }

    [Fact]
    public void RefusesOtherGeometries()
    {
        Assert.False(NchwWinograd.Supports(new ConvGeometry(16, 8, 8, 16, 3, 3, 2, 1)));
        Assert.False(NchwWinograd.Supports(new ConvGeometry(16, 8, 8, 16, 3, 3, 1, 0)));
        Assert.False(NchwWinograd.Supports(new ConvGeometry(16, 8, 8, 16, 1, 1, 1, 0)));
        Assert.Throws<NotSupportedException>(() => NchwWinograd.Forward(new ConvGeometry(16, 8, 8, 16, 5, 5, 1, 2), 1, null, null, null, null));
    }
}

/// <summary>
/// The F(4x4) input transform specialized by tile numbering (NchwWinograd.SpecializedInput4, on by default) against the
/// general one: the same reads, permutes and arithmetic, so the same bits, for every F(4x4) shape of
/// <see cref="NchwWinogradTests"/> (4, 8, 16 and 32 slots, odd sizes, several chunks). Alone, because the switch is
/// process-wide.
/// </summary>
[Collection(nameof(ResNetSharp.Tests.Models.ProcessWideSwitches))]
public unsafe class SpecializedInputTransformTests
{
    [Theory]
    [MemberData(nameof(NchwWinogradTests.Shapes), MemberType = typeof(NchwWinogradTests))]
    public void SameBitsAsTheGeneralTransform(int tile, int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        if (tile != 4 || !NchwWinograd.Supports(g)) { Assert.False(tile == 4 && Avx512F.IsSupported, "AVX-512 is here but the path refused a 3x3 stride-1 convolution"); return; }
        var rng = new Random(ic * 13 + h + oc);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc);
        var u = new float[NchwWinograd.WeightSize(oc, ic, tile)];
        fixed (float* wp = wt) fixed (float* up = u) NchwWinograd.TransformWeights(wp, oc, ic, up, tile);
        float[] Run(bool specialized)
        {
            var y = new float[batch * g.OutImage];
            NchwWinograd.SpecializedInput4 = specialized;
            try
            {
                fixed (float* xp = x) fixed (float* up = u) fixed (float* bp = bias) fixed (float* yp = y)
                    NchwWinograd.Forward(g, batch, xp, up, bp, yp, tile);
            }
            finally { NchwWinograd.SpecializedInput4 = true; }
            return y;
        }
        var general = Run(false);
        Assert.Equal(general, Run(true));
    }
}
