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
}
