using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// Winograd F(4x4,3x3) and F(2x2,3x3) against the direct reference: tile edges (sizes not a multiple of the tile),
/// bias, residual, ReLU.
/// </summary>
public unsafe class WinogradTests
{
    public static TheoryData<int, int, int, int, int, int> Cases()
    {
        var data = new TheoryData<int, int, int, int, int, int>();
        foreach (int tile in new[] { 4, 2 })
        {
            data.Add(tile, 1, 16, 4, 4, 16);
            data.Add(tile, 1, 16, 1, 1, 32);     // one pixel: a single tile, mostly padding
            data.Add(tile, 2, 32, 5, 7, 16);     // partial tiles on both axes
            data.Add(tile, 1, 64, 14, 14, 64);
            data.Add(tile, 3, 16, 9, 3, 48);
            data.Add(tile, 1, 128, 7, 7, 80);    // OC not a multiple of the 64-wide panel
            data.Add(tile, 1, 256, 14, 14, 64);  // 49 F(2x2) tiles: one row block per product (resnet's 14x14 at batch 1)
        }
        // Many tiles: several chunks per thread (Winograd.RunChunked), the last one short.
        data.Add(4, 4, 16, 121, 119, 16);   // 3,720 tiles in chunks of 222
        data.Add(2, 2, 16, 131, 129, 16);   // 8,580 tiles in chunks of 510
        return data;
    }

    /// <summary>Transformed weights up to 1 MB run in per-thread chunks of tiles, larger ones over the whole batch.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesDirectConvolution(int tile, int batch, int ic, int h, int w, int oc)
    {
        bool chunks = Winograd.TakesChunks(new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1), batch, tile);
        Assert.Equal((long)Winograd.Points(tile) * ic * oc * sizeof(float) <= 1 << 20, chunks);
        Check(tile, batch, ic, h, w, oc);
    }

    /// <summary>The forward on the direct reference, chunked or over the whole batch as <see cref="Winograd.TakesChunks"/> says now.</summary>
    internal static void Check(int tile, int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        Assert.True(Winograd.Supports(g));
        var rng = new Random(ic + oc + h);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc); var scale = R(oc); var residual = R(batch * g.OutImage);

        var yRef = FusedConvReference.Compute(g, batch, x, wt, scale, bias, residual);

        var xNhwc = new float[x.Length]; NhwcConv.ToNhwc(x, xNhwc, batch, ic, h, w);
        var rNhwc = new float[residual.Length]; NhwcConv.ToNhwc(residual, rNhwc, batch, oc, h, w);
        int tiles = Winograd.TileCount(g, batch, tile);
        var u = Winograd.TransformWeights(wt, oc, ic, scale, tile);
        Assert.Equal(Winograd.Points(tile), u.Length);
        var v = new float[Winograd.Points(tile) * tiles * ic]; var m = new float[Winograd.Points(tile) * tiles * oc];
        var rows = Enumerable.Range(0, tiles).Select(t => t * ic).ToArray();
        var yNhwc = new float[yRef.Length];
        // Chunked shapes run on scratch of their own: they get none.
        bool chunks = Winograd.TakesChunks(g, batch, tile);
        fixed (float* xp = xNhwc) fixed (float* yp = yNhwc) fixed (float* rp = rNhwc) fixed (float* bp = bias) fixed (float* vp = v) fixed (float* mp = m)
            Winograd.Forward(g, batch, u, bp, rows, xp, yp, rp, relu: true, chunks ? null : vp, chunks ? null : mp);
        var y = new float[yNhwc.Length]; NhwcConv.ToNchw(yNhwc, y, batch, oc, h, w);

        // F(4x4,3x3) rounds more than a direct sum (its transforms scale values by up to 8·5): hold both to 1e-4 of the
        // output's scale per convolution, which keeps whole networks within the 1e-3 the speed issue allows.
        double scaleOut = yRef.Max(Math.Abs);
        for (int i = 0; i < y.Length; i++)
            Assert.True(Math.Abs(yRef[i] - y[i]) <= 1e-4 * scaleOut, $"y[{i}]: expected {yRef[i]}, got {y[i]}");
    }

    [Fact]
    public void TileSizesOtherThanTwoAndFourAreRefused()
    {
        var w = new float[16 * 16 * 9];
        Assert.Throws<ArgumentOutOfRangeException>(() => Winograd.TransformWeights(w, 16, 16, default, 3));
        var g = new ConvGeometry(16, 4, 4, 16, 3, 3, 1, 1);
        var wrong = Winograd.TransformWeights(w, 16, 16, default, 2).Take(9).ToArray();
        var ex = Assert.Throws<ArgumentException>(() => Winograd.Forward(g, 1, wrong, null, [0], null, null, null, false, null, null));
        Assert.Contains("9 transformed weight matrices", ex.Message);
    }

    [Fact]
    public void OnlyStride1Padding1ThreeByThreeWithVectorChannels()
    {
        Assert.False(Winograd.Supports(new ConvGeometry(16, 8, 8, 16, 3, 3, 2, 1)));
        Assert.False(Winograd.Supports(new ConvGeometry(3, 8, 8, 16, 3, 3, 1, 1)));
        Assert.False(Winograd.Supports(new ConvGeometry(16, 8, 8, 16, 1, 1, 1, 0)));
    }
}

/// <summary>
/// Every case of <see cref="WinogradTests"/> over the whole batch (V and M shared by the threads), with the chunked
/// path switched off: the path that transformed weights over 1 MB take. Alone, because the switch is process-wide.
/// </summary>
[Collection(nameof(ResNetSharp.Tests.Models.ProcessWideSwitches))]
public class WholeBatchWinogradTests
{
    [Theory]
    [MemberData(nameof(WinogradTests.Cases), MemberType = typeof(WinogradTests))]
    public void MatchesDirectConvolution(int tile, int batch, int ic, int h, int w, int oc)
    {
        long saved = Winograd.ChunkedWeightBytes;
        Winograd.ChunkedWeightBytes = 0;
        try
        {
            Assert.False(Winograd.TakesChunks(new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1), batch, tile));
            WinogradTests.Check(tile, batch, ic, h, w, oc);
        }
        finally { Winograd.ChunkedWeightBytes = saved; }
    }
}

/// <summary>
/// The straight-line transforms (Winograd.UnrolledTransforms, on by default) against the looped ones they replace:
/// the same operations in the same order, so the same bits, inside the image and at its edges, with bias, residual
/// and ReLU, over the whole batch and in chunks. Alone, because the switch is process-wide.
/// </summary>
[Collection(nameof(ResNetSharp.Tests.Models.ProcessWideSwitches))]
public unsafe class UnrolledWinogradTransformTests
{
    [Theory]
    [MemberData(nameof(WinogradTests.Cases), MemberType = typeof(WinogradTests))]
    public void SameBitsAsTheLoopedTransforms(int tile, int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        var rng = new Random(ic * 3 + oc + h * 5 + tile);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var bias = R(oc); var residual = R(batch * g.OutImage);
        var u = Winograd.TransformWeights(R(g.WeightSize), oc, ic, R(oc), tile);
        int tiles = Winograd.TileCount(g, batch, tile), points = Winograd.Points(tile);
        var rows = Enumerable.Range(0, tiles).Select(t => t * ic).ToArray();
        var v = new float[points * tiles * ic]; var m = new float[points * tiles * oc];
        float[] Run(bool unrolled)
        {
            var y = new float[batch * g.OutImage];
            Winograd.UnrolledTransforms = unrolled;
            try
            {
                fixed (float* xp = x) fixed (float* yp = y) fixed (float* rp = residual) fixed (float* bp = bias) fixed (float* vp = v) fixed (float* mp = m)
                    Winograd.Forward(g, batch, u, bp, rows, xp, yp, rp, relu: true, vp, mp);
            }
            finally { Winograd.UnrolledTransforms = true; }
            return y;
        }
        var looped = Run(false);
        Assert.Equal(looped, Run(true));
    }
}
