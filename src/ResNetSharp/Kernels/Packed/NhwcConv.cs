using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;
namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// Convolution on NHWC activations through <see cref="PackedGemm"/>: output row m = (n, oy, ox), and at tap (kh, kw)
/// it reads the IC channels of input pixel (n, oy·s − pad + kh, ox·s − pad + kw), or zeros outside the image.
/// </summary>
public static unsafe class NhwcConv
{
    /// <summary>The indirection table: offsets[m·taps + t] into the NHWC input, −1 where the tap falls in the padding.</summary>
    public static int[] BuildOffsets(in ConvGeometry g, int batch)
    {
        int oh = g.OutHeight, ow = g.OutWidth, taps = g.KernelH * g.KernelW;
        var offsets = new int[batch * oh * ow * taps];
        int m = 0;
        for (int n = 0; n < batch; n++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++, m++)
                    for (int kh = 0; kh < g.KernelH; kh++)
                        for (int kw = 0; kw < g.KernelW; kw++)
                        {
                            int iy = oy * g.Stride - g.Padding + kh, ix = ox * g.Stride - g.Padding + kw;
                            bool inside = (uint)iy < (uint)g.Height && (uint)ix < (uint)g.Width;
                            offsets[m * taps + kh * g.KernelW + kw] = inside ? ((n * g.Height + iy) * g.Width + ix) * g.InChannels : -1;
                        }
        return offsets;
    }

    /// <summary>y (N,OH,OW,OC) = conv(x (N,H,W,IC)) + bias (+ residual) (then ReLU), with weights packed by PackedWeights.FromOihw.</summary>
    public static void Forward(in ConvGeometry g, int batch, PackedWeights w, int[] offsets, float* x, float* y, float* residual, bool relu) =>
        PackedGemm.Run(w, x, offsets, batch * g.OutPlane, y, g.OutChannels, residual, g.OutChannels, relu);

    /// <summary>NCHW → NHWC for one batch: <see cref="ToNhwcPadded"/> with no border.</summary>
    public static void ToNhwc(ReadOnlySpan<float> src, Span<float> dst, int n, int c, int h, int w) => ToNhwcPadded(src, dst, n, c, h, w, 0);

    /// <summary>
    /// NCHW → NHWC with a zero border of <paramref name="padding"/> pixels: dst is (N, H+2p, W+2p, C). One pass instead
    /// of a conversion and then a padded copy (the stem's 7x7 convolution reads the padded image). Bands of rows over the
    /// worker threads (a band's destination rows stay in cache while each channel is scattered into them); only the
    /// border is cleared; three-channel rows are interleaved with AVX-512 permutes.
    /// </summary>
    public static void ToNhwcPadded(ReadOnlySpan<float> src, Span<float> dst, int n, int c, int h, int w, int padding)
    {
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "padding must be zero or more");
        int hp = h + 2 * padding, wp = w + 2 * padding, plane = h * w;
        long total = (long)n * c * plane, padded = (long)n * hp * wp * c;
        if (src.Length < total || dst.Length < padded)
            throw new ArgumentException($"NCHW → padded NHWC of {n}x{c}x{h}x{w} (padding {padding}) needs {total} source and {padded} destination values: has {src.Length} and {dst.Length}");
        const int BandRows = 8;
        int bands = (hp + BandRows - 1) / BandRows;
        fixed (float* s = src) fixed (float* d = dst)
        {
            nint sp = (nint)s, dp = (nint)d;
            WorkerPool.For(n * bands, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (task) =>
            {
                int b = task / bands, py0 = task % bands * BandRows, py1 = Math.Min(hp, py0 + BandRows);
                float* image = (float*)sp + (long)b * c * plane;
                for (int py = py0; py < py1; py++)
                {
                    float* row = (float*)dp + ((long)b * hp + py) * wp * c;
                    int iy = py - padding;
                    if ((uint)iy >= (uint)h)
                    {
                        new Span<float>(row, wp * c).Clear();
                        continue;
                    }
                    new Span<float>(row, padding * c).Clear();
                    new Span<float>(row + (long)(padding + w) * c, padding * c).Clear();
                    float* inner = row + padding * c;
                    int done = c == 3 ? InterleaveThree(image + (long)iy * w, plane, w, inner) : 0;
                    for (int ch = 0; ch < c; ch++)
                    {
                        float* from = image + (long)ch * plane + (long)iy * w, to = inner + ch;
                        for (int x = done; x < w; x++) to[(long)x * c] = from[x];
                    }
                }
            });
        }
    }

    // Permute indices that interleave three 16-float channel vectors r, g, b into 48 floats r0 g0 b0 r1 …: step one takes
    // r and g (indices 16+ are g), step two keeps those and takes b (indices 16+ are b).
    private static readonly int[] RgIndices = new int[48], RgbIndices = new int[48];
    static NhwcConv()
    {
        for (int q = 0; q < 48; q++)
        {
            int pixel = q / 3, channel = q % 3;
            RgIndices[q] = channel == 1 ? 16 + pixel : pixel;
            RgbIndices[q] = channel == 2 ? 16 + pixel : q % 16;
        }
    }

    // The first 16·k pixels of an image row with three channels (planes `plane` floats apart) written interleaved;
    // returns how many pixels it wrote (the rest go through the scalar loop).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int InterleaveThree(float* first, int plane, int w, float* to)
    {
        if (!Avx512F.IsSupported) return 0;
        fixed (int* rg = RgIndices) fixed (int* rgb = RgbIndices)
        {
            var rg0 = Vector512.Load(rg); var rg1 = Vector512.Load(rg + 16); var rg2 = Vector512.Load(rg + 32);
            var rgb0 = Vector512.Load(rgb); var rgb1 = Vector512.Load(rgb + 16); var rgb2 = Vector512.Load(rgb + 32);
            int x = 0;
            for (; x + 16 <= w; x += 16)
            {
                var r = Vector512.Load(first + x); var g = Vector512.Load(first + plane + x); var b = Vector512.Load(first + 2L * plane + x);
                float* o = to + 3L * x;
                Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r, rg0, g), rgb0, b).Store(o);
                Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r, rg1, g), rgb1, b).Store(o + 16);
                Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r, rg2, g), rgb2, b).Store(o + 32);
            }
            return x;
        }
    }

    /// <summary>NHWC → NCHW for one batch.</summary>
    public static void ToNchw(ReadOnlySpan<float> src, Span<float> dst, int n, int c, int h, int w)
    {
        int plane = h * w;
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
            {
                var d = dst.Slice((b * c + ch) * plane, plane);
                int o = b * plane * c + ch;
                for (int i = 0; i < plane; i++) d[i] = src[o + i * c];
            }
    }

    /// <summary>
    /// Pooled rows per band of <see cref="ForwardMaxPooled"/>: its convolution rows (2·band + 1 of them, 112 pixels
    /// of 64 channels for the ImageNet stem: 0.8 MB at 14) stay in the thread's L2 until they are pooled.
    /// </summary>
    private const int PooledRowsPerBand = 14;

    /// <summary>
    /// The bands of pooled rows <see cref="ForwardMaxPooled"/> splits a batch into: each image's pooled rows in
    /// equal bands of at most <see cref="PooledRowsPerBand"/>, and at least two bands per thread over the batch.
    /// </summary>
    public static int PooledBandsPerImage(int pooledHeight, int batch) =>
        Math.Min(pooledHeight, Math.Max((pooledHeight + PooledRowsPerBand - 1) / PooledRowsPerBand, (2 * Engine.Threads + batch - 1) / batch));

    /// <summary>
    /// The convolution rows [first, end) that pooled rows [p0, p1) of a 3x3 stride-2 padding-1 max pool read, in an
    /// image of <paramref name="height"/> rows.
    /// </summary>
    public static (int First, int End) PooledBandRows(int p0, int p1, int height) => (Math.Max(0, 2 * p0 - 1), Math.Min(height, 2 * p1));

    [ThreadStatic] private static AlignedBuffer? _bandScratch;

    /// <summary>
    /// maxpool3x3/2 (padding 1) of ReLU(conv(x) + bias) in bands of pooled rows, each band's convolution rows made in
    /// the thread's scratch and pooled from there: the convolution's full output (3.2 MB an image for the ImageNet
    /// stem) is never written out and read back. Band b of image n holds pooled rows [b·PH/bands, (b + 1)·PH/bands)
    /// (<see cref="PooledBandsPerImage"/>); bandOffsets[n·bands + b] is the convolution's indirection table for its
    /// rows (<see cref="PooledBandRows"/>). Each conv value is the packed product's, and each pooled value the max over
    /// the same window in the same order as <see cref="NhwcOps.MaxPool"/>: the same bits as the two steps.
    /// </summary>
    public static void ForwardMaxPooled(in ConvGeometry g, int batch, PackedWeights w, int bands, int[][] bandOffsets, float* x, float* y)
    {
        int oh = g.OutHeight, ow = g.OutWidth, oc = g.OutChannels;
        int ph = (oh - 1) / 2 + 1, pw = (ow - 1) / 2 + 1;
        if (bands < 1 || bands > ph || bandOffsets.Length != batch * bands)
            throw new ArgumentException($"{bandOffsets.Length} band tables for {batch} images of {bands} bands");
        var geometry = g;
        nint xp = (nint)x, yp = (nint)y;
        WorkerPool.For(batch * bands, task =>
        {
            int n = task / bands, b = task % bands;
            int p0 = b * ph / bands, p1 = (b + 1) * ph / bands;
            var (first, end) = PooledBandRows(p0, p1, oh);
            int rows = (end - first) * ow;
            var band = NchwConv.Scratch(ref _bandScratch, rows * oc);
            // Nested in this task, the product runs on this thread alone.
            PackedGemm.Run(w, (float*)xp, bandOffsets[task], rows, band.Pointer, oc, null, 0, relu: true);
            PoolBand(band.Pointer, first, end, ow, oc, p0, p1, pw, (float*)yp + ((long)n * ph + p0) * pw * oc);
        });
    }

    // Pooled rows [p0, p1) from convolution rows [first, end) at band (rows of ow pixels of oc channels): window rows
    // 2p − 1 .. 2p + 1 and columns 2q − 1 .. 2q + 1 inside the image, each window's max as NhwcOps.MaxPool takes it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PoolBand(float* band, int first, int end, int ow, int oc, int p0, int p1, int pw, float* y)
    {
        long rowStride = (long)ow * oc;
        for (int p = p0; p < p1; p++)
        {
            int r0 = Math.Max(first, 2 * p - 1), r1 = Math.Min(end, 2 * p + 2);
            for (int q = 0; q < pw; q++)
            {
                int c0 = Math.Max(0, 2 * q - 1), c1 = Math.Min(ow, 2 * q + 2);
                NhwcOps.WindowMax(band + (r0 - first) * rowStride + (long)c0 * oc, rowStride, r1 - r0, c1 - c0, oc,
                    y + ((long)(p - p0) * pw + q) * oc);
            }
        }
    }
}
