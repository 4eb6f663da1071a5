using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.Kernels.Reference;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// The packed NHWC convolution (indirection + register-tiled micro-kernel + fused epilogue) against the direct
/// reference, at sizes around the 6-row tile and the NR-column panel (NR = 64, 16 or 8 by ISA).
/// </summary>
public unsafe class PackedGemmTests
{
    public static TheoryData<int, int, int, int, int, int, int, int> Geometries()
    {
        int nr = PackedGemm.NR;
        return new()
        {
            // batch, ic, h, w, oc, k, stride, pad
            { 1, 1, 1, 1, 1, 1, 1, 0 },
            { 1, 3, 5, 7, nr - 1, 3, 1, 1 },
            { 2, 5, 6, 1, nr, 1, 1, 0 },          // rows = 12 = two full tiles
            { 1, 4, 7, 1, nr + 1, 1, 1, 0 },      // rows = 7 = tile + 1
            { 1, 7, 5, 1, 2 * nr, 1, 1, 0 },      // rows = 5 = tile − 1
            { 2, 16, 9, 9, 2 * nr + 3, 3, 1, 1 },
            { 1, 3, 17, 15, 64, 7, 2, 3 },        // the ImageNet stem, odd image
            { 2, 24, 7, 7, 48, 1, 2, 0 },         // strided projection shortcut
            { 1, 600, 4, 4, 33, 3, 1, 1 },        // IC > the K chunk: partial sums carried across chunks
            { 1, 600, 4, 4, nr, 3, 1, 1 },        // rows = 16: a tile of 4 rows runs in place across the K chunks
            { 1, 64, 14, 14, 128, 3, 2, 1 },
            { 3, 130, 3, 3, 70, 3, 1, 0 },        // 1x1 output
            { 1, 520, 5, 5, 8 * nr + 5, 3, 1, 1 }, // few rows, 9 panels: runs of panels per task, each prefetching the next
        };
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void MatchesReferenceWithBiasResidualAndRelu(int batch, int ic, int h, int w, int oc, int k, int stride, int pad)
    {
        var g = new ConvGeometry(ic, h, w, oc, k, k, stride, pad);
        var rng = new Random(batch * 1000 + ic * 10 + oc);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc); var scale = R(oc); var residual = R(batch * g.OutImage);

        var yRef = FusedConvReference.Compute(g, batch, x, wt, scale, bias, residual);
        var resNhwc = new float[residual.Length]; NhwcConv.ToNhwc(residual, resNhwc, batch, oc, g.OutHeight, g.OutWidth);

        var xNhwc = new float[x.Length]; NhwcConv.ToNhwc(x, xNhwc, batch, ic, h, w);
        var packed = PackedWeights.FromOihw(wt, oc, ic, k * k, scale, bias);
        var offsets = NhwcConv.BuildOffsets(g, batch);
        var yNhwc = new float[batch * g.OutImage];
        fixed (float* xp = xNhwc) fixed (float* yp = yNhwc) fixed (float* rp = resNhwc)
            NhwcConv.Forward(g, batch, packed, offsets, xp, yp, rp, relu: true);
        var y = new float[yNhwc.Length]; NhwcConv.ToNchw(yNhwc, y, batch, oc, g.OutHeight, g.OutWidth);

        double tol = 2e-6 * g.PatchSize;
        for (int i = 0; i < y.Length; i++)
            Assert.True(Math.Abs(yRef[i] - y[i]) <= tol, $"y[{i}]: expected {yRef[i]}, got {y[i]} ({PackedGemm.Isa})");
    }

    [Fact]
    public void WithoutResidualOrReluIsThePlainProduct()
    {
        var g = new ConvGeometry(5, 3, 3, 7, 3, 3, 1, 1);
        var rng = new Random(9);
        var x = Enumerable.Range(0, g.InImage).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var wt = Enumerable.Range(0, g.WeightSize).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var yRef = new float[g.OutImage];
        Conv2dReference.Forward<float>(g, 1, x, wt, default, yRef);
        var xNhwc = new float[x.Length]; NhwcConv.ToNhwc(x, xNhwc, 1, 5, 3, 3);
        var y = new float[g.OutImage];
        fixed (float* xp = xNhwc) fixed (float* yp = y)
            NhwcConv.Forward(g, 1, PackedWeights.FromOihw(wt, 7, 5, 9, default, default), NhwcConv.BuildOffsets(g, 1), xp, yp, null, relu: false);
        var yNchw = new float[y.Length]; NhwcConv.ToNchw(y, yNchw, 1, 7, 3, 3);
        Assert.Contains(yRef, v => v < 0);
        for (int i = 0; i < y.Length; i++) Assert.Equal(yRef[i], yNchw[i], 1e-5);
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(2, 3, 7, 5)]
    [InlineData(1, 3, 45, 46)]     // 45 rows: bands of 8 and a short one; three channels: two 16-pixel vectors and a tail
    [InlineData(3, 17, 9, 13)]
    public void ToNhwcIsTheTransposeOfToNchw(int n, int c, int h, int w)
    {
        var x = Enumerable.Range(0, n * c * h * w).Select(i => (float)i).ToArray();
        var nhwc = new float[x.Length];
        NhwcConv.ToNhwc(x, nhwc, n, c, h, w);
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < h * w; p++)
                    Assert.Equal(x[(b * c + ch) * h * w + p], nhwc[(b * h * w + p) * c + ch]);
        var back = new float[x.Length];
        NhwcConv.ToNchw(nhwc, back, n, c, h, w);
        Assert.Equal(x, back);
        Assert.Throws<ArgumentException>(() => NhwcConv.ToNhwc(x, new float[x.Length - 1], n, c, h, w));
    }

    [Theory]
    [InlineData(1, 1, 1, 1, 1)]
    [InlineData(2, 3, 7, 5, 3)]
    [InlineData(1, 3, 17, 9, 0)]    // no border: the plain layout
    [InlineData(3, 5, 9, 13, 2)]    // 13 padded rows: a band of 8 and a short one
    [InlineData(2, 3, 4, 37, 3)]    // three channels: two 16-pixel vector blocks and a scalar tail of 5
    [InlineData(1, 3, 2, 16, 1)]    // exactly one vector block
    public void ToNhwcPaddedPlacesEveryPixelInsideAZeroBorder(int n, int c, int h, int w, int pad)
    {
        var x = Enumerable.Range(0, n * c * h * w).Select(i => i + 1f).ToArray();
        int hp = h + 2 * pad, wp = w + 2 * pad;
        var padded = Enumerable.Repeat(float.NaN, n * hp * wp * c).ToArray();  // stale values must all be overwritten
        NhwcConv.ToNhwcPadded(x, padded, n, c, h, w, pad);
        for (int b = 0; b < n; b++)
            for (int py = 0; py < hp; py++)
                for (int px = 0; px < wp; px++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        int iy = py - pad, ix = px - pad;
                        float expected = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[((b * c + ch) * h + iy) * w + ix] : 0f;
                        Assert.Equal(expected, padded[((b * hp + py) * wp + px) * c + ch]);
                    }
        Assert.Throws<ArgumentException>(() => NhwcConv.ToNhwcPadded(x, new float[padded.Length - 1], n, c, h, w, pad));
        Assert.Throws<ArgumentException>(() => NhwcConv.ToNhwcPadded(x.AsSpan(1).ToArray(), padded, n, c, h, w, pad));
        Assert.Throws<ArgumentOutOfRangeException>(() => NhwcConv.ToNhwcPadded(x, padded, n, c, h, w, -1));
    }
}
