using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.Kernels.Reference;
using ResNetSharp.Tests.Models;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// The packed product's and the Winograd output transform's non-temporal stores (taken for outputs of at least
/// <see cref="PackedGemm.StreamingBytes"/>, set to 1 byte here so that small outputs take them) give the same results
/// as the normal path, epilogue included.
/// </summary>
[Collection(nameof(ProcessWideSwitches))]
public unsafe class StreamingStoreTests
{
    [Theory]
    [InlineData(2, 16, 13, 11, 128, 1)]   // 286 rows: full tiles and a last one of 4, two panels
    [InlineData(2, 8, 12, 10, 80, 3)]     // a partial panel of 16 (staged, never streamed) beside a full one
    public void MatchReferenceWhenEveryOutputStreams(int batch, int ic, int h, int w, int oc, int k)
    {
        var g = new ConvGeometry(ic, h, w, oc, k, k, 1, k / 2);
        var rng = new Random(ic * 31 + oc);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc); var scale = R(oc); var residual = R(batch * g.OutImage);
        var yRef = FusedConvReference.Compute(g, batch, x, wt, scale, bias, residual);

        var xNhwc = new float[x.Length]; NhwcConv.ToNhwc(x, xNhwc, batch, ic, h, w);
        var rNhwc = new float[residual.Length]; NhwcConv.ToNhwc(residual, rNhwc, batch, oc, h, w);
        var packed = PackedWeights.FromOihw(wt, oc, ic, k * k, scale, bias);
        var y = new AlignedBuffer(batch * g.OutImage);  // 64-byte aligned, as streaming needs
        long saved = PackedGemm.StreamingBytes;
        try
        {
            PackedGemm.StreamingBytes = 1;
            fixed (float* xp = xNhwc) fixed (float* rp = rNhwc)
                NhwcConv.Forward(g, batch, packed, NhwcConv.BuildOffsets(g, batch), xp, y.Pointer, rp, relu: true);
        }
        finally { PackedGemm.StreamingBytes = saved; }
        var yNchw = new float[y.Length]; NhwcConv.ToNchw(y.Span, yNchw, batch, oc, h, w);
        double tol = 2e-6 * g.PatchSize;
        for (int i = 0; i < yNchw.Length; i++)
            Assert.True(Math.Abs(yRef[i] - yNchw[i]) <= tol, $"y[{i}]: expected {yRef[i]}, got {yNchw[i]}");
    }

    /// <summary>
    /// Winograd's output transform, streamed: F(4x4) over the whole batch and in per-thread chunks (16 channels, whose
    /// transformed weights are small), F(2x2), with a residual; the bits of the normal stores.
    /// </summary>
    [Theory]
    [InlineData(4, 2, 16, 13, 11, 32)]    // chunks
    [InlineData(4, 1, 128, 9, 9, 80)]     // whole batch (1.5 MB of transformed weights)
    [InlineData(2, 2, 32, 7, 10, 48)]
    public void WinogradOutputsMatchTheNormalStores(int tile, int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        var rng = new Random(ic * 7 + oc + tile);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var bias = R(oc); var residual = R(batch * g.OutImage);
        var u = Winograd.TransformWeights(R(g.WeightSize), oc, ic, R(oc), tile);
        int tiles = Winograd.TileCount(g, batch, tile), points = Winograd.Points(tile);
        var rows = Enumerable.Range(0, tiles).Select(t => t * ic).ToArray();
        var v = new AlignedBuffer(points * tiles * ic); var m = new AlignedBuffer(points * tiles * oc);
        AlignedBuffer Run(long streamingBytes)
        {
            var y = new AlignedBuffer(batch * g.OutImage);
            long saved = PackedGemm.StreamingBytes;
            try
            {
                PackedGemm.StreamingBytes = streamingBytes;
                fixed (float* xp = x) fixed (float* bp = bias) fixed (float* rp = residual)
                    Winograd.Forward(g, batch, u, bp, rows, xp, y.Pointer, rp, relu: true, v.Pointer, m.Pointer);
            }
            finally { PackedGemm.StreamingBytes = saved; }
            return y;
        }
        var normal = Run(long.MaxValue);
        var streamed = Run(1);
        Assert.Equal(normal.Span.ToArray(), streamed.Span.ToArray());
    }
}
