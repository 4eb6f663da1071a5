using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Reference;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// The convolution kernels against the direct seven-loop definition, forward and backward: float runs the packed
/// micro-kernel path (im2col packed into panels, images over threads), double the plain im2col + tiled GEMM.
/// </summary>
public class ConvKernelTests
{
    public static TheoryData<int, int, int, int, int, int, int, int> Geometries() => new()
    {
        // batch, ic, h, w, oc, k, stride, pad
        { 1, 1, 1, 1, 1, 1, 1, 0 },
        { 2, 3, 7, 6, 4, 3, 2, 1 },
        { 1, 3, 11, 9, 5, 7, 2, 3 },   // the ImageNet stem, odd sizes
        { 2, 5, 4, 5, 6, 1, 1, 0 },    // pointwise: no im2col
        { 2, 4, 7, 7, 8, 1, 2, 0 },    // strided projection shortcut
        { 1, 16, 9, 9, 15, 3, 1, 1 },
        { 1, 17, 8, 8, 17, 3, 1, 1 },
        { 3, 2, 3, 3, 3, 3, 1, 0 },    // output 1x1
        { 1, 2, 2, 2, 3, 3, 2, 1 },    // image smaller than the kernel, padding makes it fit
        { 1, 8, 33, 31, 9, 3, 2, 1 },  // large and odd
        { 5, 3, 9, 9, 65, 3, 1, 1 },   // 81 pixels: one full 64-pixel panel and a tail; images over threads
        { 4, 70, 8, 8, 7, 1, 1, 0 },   // K = 70: the transposed im2col spans two 64-row panels
        { 3, 1, 28, 28, 16, 3, 1, 1 }, // resnet20's stem: one input channel (an odd channel count)
        { 2, 3, 7, 6, 4, 3, 1, 0 },    // 3x3 unpadded: two junk columns per row
        { 2, 5, 6, 5, 33, 3, 1, 2 },   // padding 2, 33 output channels (past 32)
        { 3, 4, 7, 7, 64, 3, 1, 1 },   // 64 output channels: the 3x3 weight gradient in two halves
        { 2, 3, 5, 6, 65, 3, 1, 1 },   // 65: past the 3x3 weight-gradient kernel, the general product
        { 37, 6, 7, 9, 32, 3, 1, 1 },  // 32 output channels; images over threads
        { 11, 16, 40, 40, 16, 3, 1, 1 }, // weight gradient in sub-batches of 4 images, the last one short
        { 2, 5, 9, 8, 70, 3, 2, 1 },   // stride 2 (the four-phase views), two panels of output channels, odd width
        { 3, 2, 10, 10, 8, 5, 2, 2 },  // stride 2, 5x5: taps in all four phases
        { 2, 3, 5, 5, 70, 1, 1, 0 },   // pointwise with two panels of output channels
        { 2, 3, 9, 8, 5, 3, 2, 0 },    // stride 2 unpadded: odd input columns go to the even phase
        { 1, 4, 8, 7, 6, 2, 2, 0 },    // stride 2, 2x2: one tap per phase
        { 1, 3, 6, 45, 5, 3, 2, 1 },   // stride 2, 45 wide: each input row splits into its phases in two 32-column blocks
        { 1, 2, 9, 66, 4, 7, 2, 3 },   // the stem's 7x7/2 (padding 3) on rows of three blocks
        { 5, 4, 9, 10, 6, 3, 2, 1 },   // stride 2 over 5 images: several images per dx product (dcol = Wᵀ·dy, col2im)
        { 6, 3, 7, 9, 5, 1, 2, 0 },    // the same for a strided 1x1
        { 2, 32, 9, 7, 33, 3, 1, 1 },  // 32 channels and up: forward and dx by Winograd F(2x2,3x3) on AVX-512
        { 3, 40, 14, 14, 64, 3, 1, 1 },
        { 2, 32, 12, 11, 20, 3, 1, 1 },  // forward and dx by F(4x4,3x3): more than 8 wide
        { 2, 3, 1, 1, 4, 3, 2, 1 },    // stride 2 on a 1x1 image: the kw = 2 tap lies right of the only column
        { 2, 2, 1, 1, 3, 7, 2, 3 },    // the same for 7x7/2 (the scatter col2im, taps kw = 4..6 outside)
        { 3, 5, 14, 14, 8, 3, 2, 1 },  // resnet20's downsampling shape, small: dx by the gathered col2im
        { 2, 1, 5, 17, 3, 3, 1, 1 },   // one input channel (SingleChannelConv): 17 wide, odd output channels
        { 1, 1, 1, 1, 2, 3, 1, 1 },    // one channel, one pixel: every tap but the centre outside
        { 3, 1, 16, 16, 16, 3, 1, 1 }, // one channel, rows of exactly one vector
        { 2, 1, 33, 31, 5, 3, 1, 1 },  // one channel, 31 wide: the second vector one short
        { 2, 6, 11, 34, 17, 3, 2, 1 }, // Stride2Conv3x3: 17 output channels (a pass of 16 and one), 17 outputs a row
        { 1, 64, 5, 5, 64, 3, 2, 1 },  // its largest: 64 channels each side
        { 3, 16, 28, 28, 16, 3, 1, 1 }, // NarrowConv3x3: resnet20's 16-channel layers (forward and dx)
        { 2, 8, 5, 7, 16, 3, 1, 1 },   // 8 in, 16 out; 7 wide: a vector spans three rows
        { 2, 16, 1, 1, 8, 3, 1, 1 },   // one pixel: every tap but the centre in the padding
        { 1, 8, 3, 17, 8, 3, 1, 1 },   // rows longer than a vector, the last pass mostly past the image
        { 1, 8, 1, 46, 8, 3, 1, 1 },   // 47 wide positions: one short of a 48-position pass
        { 2, 8, 1, 47, 16, 3, 1, 1 },  // exactly one pass
        { 1, 16, 1, 48, 8, 3, 1, 1 },  // one past it
        { 2, 2, 4, 8, 16, 3, 1, 1 },   // 40 wide positions: the carried-tap weight gradient's 3-pixel steps leave one
    };

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void ForwardAndBackwardMatchReference(int batch, int ic, int h, int w, int oc, int k, int stride, int pad)
    {
        var g = new ConvGeometry(ic, h, w, oc, k, k, stride, pad);
        var x = Random(batch * g.InImage, 1); var wt = Random(g.WeightSize, 2); var bias = Random(oc, 3);
        var dy = Random(batch * g.OutImage, 4);
        var scratch = new float[Conv2dKernel.ScratchSize<float>(g)];

        var yRef = new float[batch * g.OutImage]; var y = new float[batch * g.OutImage];
        Conv2dReference.Forward<float>(g, batch, x, wt, bias, yRef);
        Conv2dKernel.Forward<float>(g, batch, x, wt, bias, y, scratch);
        AssertClose(yRef, y, g.PatchSize, "y");

        var dxRef = new float[x.Length]; var dwRef = new float[wt.Length]; var dbRef = new float[oc];
        var dx = new float[x.Length]; var dw = new float[wt.Length]; var db = new float[oc];
        Conv2dReference.Backward<float>(g, batch, x, wt, dy, dxRef, dwRef, dbRef);
        Conv2dKernel.Backward<float>(g, batch, x, wt, dy, dx, dw, db, scratch);
        AssertClose(dxRef, dx, oc * k * k, "dx");
        AssertClose(dwRef, dw, batch * g.OutPlane, "dw");
        AssertClose(dbRef, db, batch * g.OutPlane, "db");
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void DoublePathMatchesReference(int batch, int ic, int h, int w, int oc, int k, int stride, int pad)
    {
        var g = new ConvGeometry(ic, h, w, oc, k, k, stride, pad);
        var rng = new Random(5);
        double[] R(int n) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var dy = R(batch * g.OutImage);
        var scratch = new double[Conv2dKernel.ScratchSize<double>(g)];
        var yRef = new double[dy.Length]; var y = new double[dy.Length];
        Conv2dReference.Forward<double>(g, batch, x, wt, default, yRef);
        Conv2dKernel.Forward<double>(g, batch, x, wt, default, y, scratch);
        var dxRef = new double[x.Length]; var dwRef = new double[wt.Length]; var dx = new double[x.Length]; var dw = new double[wt.Length];
        Conv2dReference.Backward<double>(g, batch, x, wt, dy, dxRef, dwRef, default);
        Conv2dKernel.Backward<double>(g, batch, x, wt, dy, dx, dw, default, scratch);
        for (int i = 0; i < y.Length; i++) Assert.Equal(yRef[i], y[i], 1e-10);
        for (int i = 0; i < dx.Length; i++) Assert.Equal(dxRef[i], dx[i], 1e-10);
        for (int i = 0; i < dw.Length; i++) Assert.Equal(dwRef[i], dw[i], 1e-10);
    }

    private static void AssertClose(float[] expected, float[] actual, int terms, string what)
    {
        double tol = 1e-6 * Math.Max(1, terms);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
    }
}

/// <summary>The vectorised float 3x3/2 max pool against the scalar one (run in double), with ties, −∞ and NaN.</summary>
public class MaxPoolKernelTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 3)]
    [InlineData(5, 4)]
    [InlineData(7, 7)]
    [InlineData(9, 8)]
    [InlineData(33, 47)]   // odd, and wider than one vector of outputs
    [InlineData(6, 21)]    // the row ends inside the second half of a 32-column split
    [InlineData(5, 53)]
    [InlineData(4, 31)]    // 16 output columns: one whole vector
    [InlineData(3, 33)]    // 17: one vector and one column
    [InlineData(3, 63)]    // 32: two whole vectors
    [InlineData(3, 65)]    // 33
    [InlineData(112, 112)]
    public void VectorisedFloatPathMatchesScalar(int h, int w)
    {
        var rng = new Random(h * 100 + w);
        int planes = 3;
        var xf = new float[planes * h * w];
        for (int i = 0; i < xf.Length; i++) xf[i] = MathF.Round((float)rng.NextDouble() * 4) / 2;  // many ties
        if (xf.Length > 10) { xf[3] = float.NaN; xf[7] = float.NegativeInfinity; }
        var xd = xf.Select(v => (double)v).ToArray();
        int oh = (h - 1) / 2 + 1, ow = (w - 1) / 2 + 1;
        var yf = new float[planes * oh * ow]; var af = new int[yf.Length];
        var yd = new double[yf.Length]; var ad = new int[yf.Length];
        PoolKernels.MaxPoolForward<float>(planes, h, w, 3, 2, 1, xf, yf, af);
        PoolKernels.MaxPoolForward<double>(planes, h, w, 3, 2, 1, xd, yd, ad);
        for (int i = 0; i < yf.Length; i++)
        {
            Assert.True(yf[i].Equals((float)yd[i]), $"y[{i}]: float {yf[i]}, scalar {yd[i]}");
            Assert.True(ad[i] == af[i], $"argmax[{i}]: float {af[i]}, scalar {ad[i]} ({h}x{w})");
        }
    }
}

/// <summary>
/// The gathered col2im of the 3x3 stride-2 padding-1 convolution (float, AVX-512) against the generic scatter loop
/// (double; without AVX-512 the float path is that loop too): values that are quarters of small integers, so both
/// sums are exact and must agree to the bit.
/// </summary>
[Collection(nameof(ResNetSharp.Tests.Models.ProcessWideSwitches))]
public class GatherCol2ImTests
{
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 1, 0 }, { 2, 2, 0 }, { 3, 7, 0 }, { 7, 6, 0 },
        { 14, 14, 0 },   // resnet20's 32→64 layer: rows of 7 outputs
        { 28, 28, 0 },   // its 16→32 layer: 14
        { 5, 31, 0 }, { 6, 32, 0 },   // 16 outputs: one whole vector
        { 5, 29, 0 },    // 15: one below
        { 4, 33, 0 }, { 3, 34, 0 },   // 17: one above
        { 9, 65, 0 },    // 33: two vectors and one
        { 56, 56, 0 },
        { 7, 9, 40 },    // rows of the col matrix further apart than one plane (several images per product)
    };

    /// <summary>
    /// With any values, against the float scatter form (<see cref="Conv2dKernel.UseGatherCol2Im"/> off): the gather adds
    /// in the scatter's order, so training takes the same bits either way.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesTheFloatScatterBitForBit(int h, int w, int extraStride)
    {
        var g = new ConvGeometry(3, h, w, 5, 3, 3, 2, 1);
        int rowStride = g.OutPlane + extraStride;
        var rng = new Random(h * 7 + w);
        var col = new float[(3 * 9 - 1) * rowStride + g.OutPlane];
        for (int i = 0; i < col.Length; i++) col[i] = (float)(rng.NextDouble() * 2 - 1);
        var gathered = Enumerable.Repeat(float.NaN, 3 * h * w).ToArray();
        var scattered = new float[gathered.Length];
        Conv2dKernel.Col2Im<float>(g, col, gathered, rowStride);
        Conv2dKernel.UseGatherCol2Im = false;
        try { Conv2dKernel.Col2Im<float>(g, col, scattered, rowStride); }
        finally { Conv2dKernel.UseGatherCol2Im = true; }
        for (int i = 0; i < gathered.Length; i++)
            // (or both zero: the scatter starts from +0, so a −0 sum comes out +0 there)
            Assert.True(BitConverter.SingleToInt32Bits(gathered[i]) == BitConverter.SingleToInt32Bits(scattered[i]) || gathered[i] == scattered[i],
                $"dx[{i}] ({h}x{w}): gathered {gathered[i]}, scattered {scattered[i]}");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MatchesTheScatterLoop(int h, int w, int extraStride)
    {
        int channels = 3;
        var g = new ConvGeometry(channels, h, w, 5, 3, 3, 2, 1);
        int plane = g.OutPlane, rowStride = plane + extraStride;
        var rng = new Random(h * 131 + w);
        var colF = new float[(channels * 9 - 1) * rowStride + plane];
        for (int i = 0; i < colF.Length; i++) colF[i] = rng.Next(-32, 33) / 4f;
        var colD = colF.Select(v => (double)v).ToArray();
        var dxF = Enumerable.Repeat(float.NaN, channels * h * w).ToArray();  // every element must be written
        var dxD = new double[dxF.Length];
        Conv2dKernel.Col2Im<float>(g, colF, dxF, rowStride);
        Conv2dKernel.Col2Im<double>(g, colD, dxD, rowStride);
        for (int i = 0; i < dxF.Length; i++)
            Assert.True(dxF[i] == (float)dxD[i], $"dx[{i}] ({h}x{w}): gathered {dxF[i]}, scatter loop {dxD[i]}");
    }
}

/// <summary>Global average pooling (planes over threads, four add chains at once) against the plain sum of each plane in order.</summary>
public class GlobalAverageTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 49)]
    [InlineData(5, 50)]
    [InlineData(4, 7)]
    [InlineData(1027, 49)]   // tasks of 334 planes, the last short, and a tail under four
    [InlineData(9, 1 << 15)] // planes larger than a task's share
    public void MatchesThePlainSumInOrder(int planes, int plane)
    {
        var rng = new Random(planes + plane);
        var x = Enumerable.Range(0, planes * plane).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = new float[planes];
        PoolKernels.GlobalAverageForward<float>(planes, plane, x, y);
        for (int p = 0; p < planes; p++)
        {
            float sum = 0;
            for (int i = 0; i < plane; i++) sum += x[p * plane + i];
            Assert.True(y[p] == sum / plane, $"plane {p}: {y[p]}, in order {sum / plane}");
        }
        var dx = Enumerable.Repeat(float.NaN, planes * plane).ToArray();
        PoolKernels.GlobalAverageBackward<float>(planes, plane, y, dx);
        for (int i = 0; i < dx.Length; i++) Assert.True(dx[i] == y[i / plane] / plane, $"dx[{i}]");
    }
}

/// <summary>
/// The direct kernels' forward passes against the packed products they replace (their switch off): the same taps
/// added in the same order, so the same bits (up to the sign of a zero).
/// </summary>
[Collection(nameof(ResNetSharp.Tests.Models.ProcessWideSwitches))]
public class DirectConvForwardTests
{
    [Theory]
    [InlineData(2, 28, 28, 16)]
    [InlineData(1, 5, 17, 3)]
    [InlineData(3, 1, 1, 4)]
    [InlineData(2, 9, 33, 7)]
    public void ForwardMatchesThePackedProductBitForBit(int batch, int h, int w, int oc) =>
        AssertSameForward(new ConvGeometry(1, h, w, oc, 3, 3, 1, 1), batch, on => ResNetSharp.Kernels.Packed.SingleChannelConv.Enabled = on);

    /// <summary>The same for the stride-2 3x3 kernel of few channels (Stride2Conv3x3) against the phased product.</summary>
    [Theory]
    [InlineData(2, 16, 28, 28, 32, 1)]   // resnet20's downsampling layers
    [InlineData(2, 32, 14, 14, 64, 1)]
    [InlineData(1, 3, 9, 35, 17, 1)]
    [InlineData(2, 5, 8, 9, 6, 0)]
    public void Stride2ForwardMatchesThePackedProductBitForBit(int batch, int ic, int h, int w, int oc, int pad) =>
        AssertSameForward(new ConvGeometry(ic, h, w, oc, 3, 3, 2, pad), batch, on => ResNetSharp.Kernels.Packed.Stride2Conv3x3.Enabled = on);

    /// <summary>
    /// The same for the direct kernel of 16 channels or fewer (NarrowConv3x3), forward and input gradient, against the
    /// direct product over the padded image's views (Winograd off too, since it would otherwise take these layers).
    /// </summary>
    [Theory]
    [InlineData(2, 16, 28, 28, 16)]   // resnet20's 16-channel layers
    [InlineData(1, 8, 5, 7, 16)]
    [InlineData(3, 16, 1, 1, 8)]
    [InlineData(2, 8, 4, 18, 8)]
    [InlineData(1, 16, 9, 14, 16)]
    [InlineData(1, 8, 1, 46, 8)]      // 47, 48 and 49 wide positions: around one 48-position pass
    [InlineData(2, 8, 1, 47, 16)]
    [InlineData(1, 16, 1, 48, 8)]
    public void NarrowForwardAndInputGradientMatchTheProductBitForBit(int batch, int ic, int h, int w, int oc)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
        Assert.True(ResNetSharp.Kernels.Packed.NarrowConv3x3.Supports(g));
        void Set(bool on) { ResNetSharp.Kernels.Packed.NarrowConv3x3.Enabled = on; ResNetSharp.Kernels.Packed.NchwConv.UseWinograd = on; }
        AssertSameForward(g, batch, Set);
        var rng = new Random(h * 7 + w);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var dy = R(batch * g.OutImage);
        float[] InputGradient(bool kernel)
        {
            var dx = new float[x.Length]; var dw = new float[wt.Length]; var db = new float[oc];
            Set(kernel);
            try { Conv2dKernel.Backward<float>(g, batch, x, wt, dy, dx, dw, db, []); }
            finally { Set(true); }
            return dx;
        }
        var fast = InputGradient(true); var product = InputGradient(false);
        for (int i = 0; i < fast.Length; i++) Assert.True(fast[i] == product[i], $"dx[{i}]: kernel {fast[i]}, product {product[i]}");
    }

    /// <summary>
    /// The 16-channel weight gradient with carried taps (Conv3x3WeightGradient.One16, three pixels a step over the
    /// junk columns too) against Two16: every accumulator adds its pixels in the same order, so the same bits.
    /// </summary>
    [Theory]
    [InlineData(2, 16, 28, 28, 16, 1)]  // resnet20's 16-channel layers
    [InlineData(3, 5, 7, 9, 15, 1)]     // odd channels; rows of 9: three steps of 3
    [InlineData(2, 4, 6, 5, 3, 0)]      // unpadded: rows of 3, one step
    [InlineData(1, 3, 4, 4, 16, 2)]     // padding 2: rows of 6
    [InlineData(2, 2, 1, 1, 8, 1)]      // one pixel: no step of 3, one left (one input channel would take SingleChannelConv)
    [InlineData(1, 2, 4, 8, 16, 1)]     // rows of 8: two steps of 3 and two left
    public void CarriedTapWeightGradientMatchesTwo16BitForBit(int batch, int ic, int h, int w, int oc, int pad)
    {
        var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, pad);
        AssertTakesTheTapKernel(g);
        var rng = new Random(h * 5 + w + pad);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var dy = R(batch * g.OutImage);
        float[] WeightGradient(bool carried)
        {
            var dw = new float[wt.Length];
            ResNetSharp.Kernels.Packed.Conv3x3WeightGradient.CarriedTaps = carried;
            try { Conv2dKernel.Backward<float>(g, batch, x, wt, dy, default, dw, default, []); }
            finally { ResNetSharp.Kernels.Packed.Conv3x3WeightGradient.CarriedTaps = true; }
            return dw;
        }
        var carried = WeightGradient(true); var two = WeightGradient(false);
        for (int i = 0; i < carried.Length; i++) Assert.True(carried[i] == two[i], $"dw[{i}]: carried {carried[i]}, Two16 {two[i]}");
    }

    /// <summary>
    /// An infinite input: the carried-tap weight gradient reads only the taps of real outputs, as Two16 does, so the
    /// taps that never meet it stay finite, and every value is Two16's (NaN where Two16's is NaN).
    /// </summary>
    [Fact]
    public void CarriedTapWeightGradientWithAnInfiniteInputMatchesTwo16()
    {
        var g = new ConvGeometry(2, 4, 5, 16, 3, 3, 1, 1);
        AssertTakesTheTapKernel(g);
        var rng = new Random(7);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(g.InImage); var wt = R(g.WeightSize); var dy = R(g.OutImage);
        x[1 * 5 + 4] = float.PositiveInfinity;   // channel 0, row 1, the last column
        float[] WeightGradient(bool carried)
        {
            var dw = new float[wt.Length];
            ResNetSharp.Kernels.Packed.Conv3x3WeightGradient.CarriedTaps = carried;
            try { Conv2dKernel.Backward<float>(g, 1, x, wt, dy, default, dw, default, []); }
            finally { ResNetSharp.Kernels.Packed.Conv3x3WeightGradient.CarriedTaps = true; }
            return dw;
        }
        var carried = WeightGradient(true); var two = WeightGradient(false);
        for (int i = 0; i < carried.Length; i++)
            Assert.True(carried[i] == two[i] || float.IsNaN(carried[i]) && float.IsNaN(two[i]), $"dw[{i}]: carried {carried[i]}, Two16 {two[i]}");
        // Output channel 0, input channel 0, tap (kh 0, kw 0) reads columns 0..3 only: finite.
        Assert.True(float.IsFinite(carried[0]), $"dw[0] = {carried[0]}");
    }

    /// <summary>
    /// The phased copy clears its scratch only when the shape changes: one shape, another, then the first again with
    /// new values, each against the reference (stale values in the padding would show).
    /// </summary>
    [Fact]
    public void PhasedCopyReusedAcrossShapes()
    {
        var first = new ConvGeometry(5, 9, 10, 6, 3, 3, 2, 1);
        var other = new ConvGeometry(3, 12, 7, 4, 3, 3, 2, 1);
        foreach (var (g, seed) in new[] { (first, 1), (other, 2), (first, 3), (first, 4) })
        {
            var rng = new Random(seed);
            float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 20 - 10)).ToArray();
            int batch = 4;
            var x = R(batch * g.InImage); var wt = R(g.WeightSize);
            var y = new float[batch * g.OutImage]; var expected = new float[y.Length];
            Conv2dKernel.Forward<float>(g, batch, x, wt, default, y, []);
            Conv2dReference.Forward<float>(g, batch, x, wt, default, expected);
            for (int i = 0; i < y.Length; i++)
                Assert.True(Math.Abs(y[i] - expected[i]) <= 1e-3, $"seed {seed}, y[{i}]: {y[i]}, reference {expected[i]}");
        }
    }

    // The 16-output-channel tap kernel (One16 or Two16) takes this weight gradient: not the one-channel stem's, and
    // not Winograd's (below 32 channels).
    private static void AssertTakesTheTapKernel(ConvGeometry g)
    {
        Assert.True(ResNetSharp.Kernels.Packed.Conv3x3WeightGradient.Supports(g));
        Assert.False(ResNetSharp.Kernels.Packed.SingleChannelConv.Supports(g));
        Assert.Equal(16, ResNetSharp.Kernels.Packed.Conv3x3WeightGradient.PaddedOutChannels(g.OutChannels));
        Assert.True(Math.Min(g.InChannels, g.OutChannels) < ResNetSharp.Kernels.Packed.NchwConv.MinWinogradGradientChannels);
    }

    private static void AssertSameForward(ConvGeometry g, int batch, Action<bool> setKernel)
    {
        int h = g.Height, w = g.Width, oc = g.OutChannels;
        var rng = new Random(h * 3 + w);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc);
        var fast = new float[batch * g.OutImage]; var packed = new float[fast.Length];
        Conv2dKernel.Forward<float>(g, batch, x, wt, bias, fast, []);
        setKernel(false);
        try { Conv2dKernel.Forward<float>(g, batch, x, wt, bias, packed, []); }
        finally { setKernel(true); }
        for (int i = 0; i < fast.Length; i++) Assert.True(fast[i] == packed[i], $"y[{i}]: kernel {fast[i]}, packed product {packed[i]}");
    }
}
