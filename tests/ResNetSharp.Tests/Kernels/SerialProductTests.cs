using ResNetSharp.Kernels.Packed;
using ResNetSharp.Kernels.Reference;
using ResNetSharp.Tests.Models;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// <see cref="PackedGemm.RunSerial"/> with and without its short-product path. It flips a process-wide switch, so it
/// runs in the collection that keeps such tests apart.
/// </summary>
[Collection(nameof(ProcessWideSwitches))]
public unsafe class SerialProductTests
{
    /// <summary>
    /// The serial product (Winograd's per-point products) against the reference, at rows around the 6-row tile and
    /// reductions around the short-product path's limit (64: taken on AVX-512; 65: the general path). Both paths
    /// run the same kernels in the same order, so where the short path exists the two must agree to the bit.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 1, false)]
    [InlineData(5, 16, 1, false)]     // a tile − 1 rows
    [InlineData(6, 16, 2, true)]
    [InlineData(7, 63, 1, false)]     // a tile + 1 rows
    [InlineData(16, 16, 3, true)]     // resnet20's 16 channels: tiles of 6, 6 and 4
    [InlineData(37, 64, 2, false)]
    [InlineData(16, 65, 2, true)]     // just past the short path
    [InlineData(8, 16, 1, true)]      // a 2-row tile: spare rows read and written, C added to
    [InlineData(9, 64, 2, true)]      // a 3-row tile at the short path's limit, C added to
    [InlineData(5, 16, 1, true)]      // one short 6-row tile, C added to
    public void SerialProductMatchesTheReference(int rows, int k, int panels, bool accumulate)
    {
        int nr = PackedGemm.NR, columns = panels * nr;
        var rng = new Random(rows * 1000 + k);
        float[] a = Enumerable.Range(0, rows * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        float[] b = Enumerable.Range(0, k * columns).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        float[] c0 = Enumerable.Range(0, rows * columns).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var packed = new AlignedBuffer(k * columns);
        for (int kk = 0; kk < k; kk++)
            for (int col = 0; col < columns; col++)
                packed.Pointer[(long)(col / nr) * k * nr + kk * nr + col % nr] = b[kk * columns + col];
        var offsets = Enumerable.Range(0, rows).Select(r => r * k).ToArray();
        var expected = (float[])c0.Clone();
        GemmReference.NN<float>(rows, columns, k, a, k, b, columns, expected, columns, accumulate);

        float[] Run(bool lean)
        {
            bool saved = PackedGemm.LeanSmallProducts;
            PackedGemm.LeanSmallProducts = lean;
            try
            {
                var c = (float[])c0.Clone();
                fixed (float* ap = a) fixed (int* op = offsets) fixed (float* cp = c)
                    PackedGemm.RunSerial(new PanelMatrix(packed.Pointer, null, columns, 1, k), ap, op, rows, cp, columns, accumulate);
                return c;
            }
            finally { PackedGemm.LeanSmallProducts = saved; }
        }
        var general = Run(lean: false);
        var small = Run(lean: true);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - small[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"element {i}: {small[i]} vs reference {expected[i]}");
        Assert.Equal(general, small);
    }
}
