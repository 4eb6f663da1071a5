using System.Runtime.Intrinsics.X86;
using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.Tests.Models;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// The cache line between the NCHW Winograd transformed weights' points (NchwWinograd.WeightPointStride): it moves
/// only addresses, so its measurement switch (PadWeightPoints, flipped by bench --ab) must give the same bits; and it
/// keeps power-of-two channel counts off a 4 KB point stride. Alone, because the switch is process-wide.
/// </summary>
[Collection(nameof(ProcessWideSwitches))]
public unsafe class WinogradWeightLayoutTests
{
    [Theory]
    [InlineData(4, 2, 32, 12, 12, 32)]    // F(4x4): 32x32 channels, 4 KB a point without the line
    [InlineData(2, 3, 16, 7, 7, 64)]      // F(2x2) on 7x7 images, dx-like: more outputs than inputs
    public void PointLineChangesNoBits(int tile, int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        if (!NchwWinograd.Supports(g)) { Assert.False(Avx512F.IsSupported, "AVX-512 is here but the path refused a 3x3 stride-1 convolution"); return; }
        var rng = new Random(tile * 100 + ic);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc);
        float[] Run(bool pad)
        {
            NchwWinograd.PadWeightPoints = pad;
            try
            {
                var u = new float[NchwWinograd.WeightSize(oc, ic, tile)];
                var y = new float[batch * g.OutImage];
                fixed (float* xp = x) fixed (float* wp = wt) fixed (float* up = u) fixed (float* bp = bias) fixed (float* yp = y)
                {
                    NchwWinograd.TransformWeights(wp, oc, ic, up, tile);
                    NchwWinograd.Forward(g, batch, xp, up, bp, yp, tile);
                }
                return y;
            }
            finally { NchwWinograd.PadWeightPoints = true; }
        }
        var padded = Run(true);
        var unpadded = Run(false);
        Assert.Equal(unpadded, padded);
        Assert.Equal((long)oc * ic + 16, NchwWinograd.WeightPointStride(oc, ic));
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(256, 256)]
    [InlineData(512, 512)]
    public void PointStrideIsNotAWholeNumberOfPages(int oc, int ic) =>
        Assert.NotEqual(0, NchwWinograd.WeightPointStride(oc, ic) * sizeof(float) % 4096);
}
