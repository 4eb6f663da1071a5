using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// The 3x3 stride-1 padding-1 convolution of a one-channel image (resnet20's stem on grayscale) on AVX-512, straight
/// from the image: 16 output pixels of a row at a time, their nine taps read with masked loads (zero outside the
/// image), kept in registers across the output channels. As a matrix product (<see cref="NchwConv"/>'s shifted
/// views) its reduction is only 9 long: each tile of outputs was written to a padded-width scratch and copied out,
/// and resnet20's stem ran at 31 GFLOP/s (0.92 ms forward, 0.89 backward per step at batch 128).
/// </summary>
internal static unsafe class SingleChannelConv
{
    /// <summary>Whether this kernel takes the convolution (on by default; off only to test and measure it).</summary>
    internal static bool Enabled = true;

    public static bool Supports(in ConvGeometry g) =>
        Enabled && Avx512F.IsSupported && g.InChannels == 1 && g.KernelH == 3 && g.KernelW == 3 && g.Stride == 1 && g.Padding == 1;

    /// <summary>
    /// y[n, o] = Σ_t w[o, t]·(tap t of x[n]) (+ bias[o] after), the taps added in order from zero: the packed product's
    /// order, so the same bits. x (N, 1, H, W), w (OC, 1, 3, 3), y (N, OC, H, W); bias may be null.
    /// </summary>
    public static void Forward(in ConvGeometry g, int batch, float* x, float* w, float* bias, float* y)
    {
        int h = g.Height, width = g.Width, oc = g.OutChannels, plane = h * width;
        nint xs = (nint)x, ws = (nint)w, ys = (nint)y, bs = (nint)bias;
        WorkerPool.For(batch, n =>
        {
            float* image = (float*)xs + (long)n * plane, output = (float*)ys + (long)n * oc * plane, weights = (float*)ws;
            for (int r = 0; r < h; r++)
                for (int x0 = 0; x0 < width; x0 += 16)
                {
                    LoadTaps(image, h, width, r, x0, out var t0, out var t1, out var t2, out var t3, out var t4, out var t5, out var t6, out var t7, out var t8);
                    var store = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(width - x0)).AsSingle();
                    float* at = output + (long)r * width + x0;
                    for (int o = 0; o < oc; o++, at += plane)
                    {
                        // From zero: w₀·t₀ + 0 rounds as w₀·t₀, the product's first step.
                        var acc = NineTaps.Sum(weights + o * 9, 1, t0, t1, t2, t3, t4, t5, t6, t7, t8, Vector512<float>.Zero);
                        if (bs != 0) acc += Vector512.Create(((float*)bs)[o]);
                        Avx512F.MaskStore(at, store, acc);
                    }
                }
        });
    }

    /// <summary>
    /// dw[o, t] += Σ over the batch and the pixels of dy[n, o]·(tap t of x[n]). Two output channels at a time hold 18
    /// accumulators of 16 pixel lanes, summed across lanes at the end; images split over the threads, their partial
    /// sums added in thread order.
    /// </summary>
    public static void WeightGradient(in ConvGeometry g, int batch, float* x, float* dy, float* dw)
    {
        int h = g.Height, width = g.Width, oc = g.OutChannels, plane = h * width;
        int groups = Math.Max(1, Math.Min(Engine.Threads, batch));
        var partial = new float[groups * oc * 9];
        fixed (float* pp = partial)
        {
        nint xs = (nint)x, dys = (nint)dy, ps = (nint)pp;
        WorkerPool.For(groups, group =>
        {
            int start = group * batch / groups, end = (group + 1) * batch / groups;
            for (int o = 0; o < oc; o += 2)
            {
                // An odd last channel pairs with itself; the copy's sums are dropped.
                int second = Math.Min(o + 1, oc - 1);
                var z = Vector512<float>.Zero;
                Vector512<float> a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, a8 = z;
                Vector512<float> b0 = z, b1 = z, b2 = z, b3 = z, b4 = z, b5 = z, b6 = z, b7 = z, b8 = z;
                for (int n = start; n < end; n++)
                {
                    float* image = (float*)xs + (long)n * plane;
                    float* d0 = (float*)dys + ((long)n * oc + o) * plane, d1 = (float*)dys + ((long)n * oc + second) * plane;
                    for (int r = 0; r < h; r++)
                        for (int x0 = 0; x0 < width; x0 += 16)
                        {
                            LoadTaps(image, h, width, r, x0, out var t0, out var t1, out var t2, out var t3, out var t4, out var t5, out var t6, out var t7, out var t8);
                            var valid = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(width - x0)).AsSingle();
                            var g0 = Avx512F.MaskLoad(d0 + r * width + x0, valid, z);
                            var g1 = Avx512F.MaskLoad(d1 + r * width + x0, valid, z);
                            a0 = Vector512.FusedMultiplyAdd(g0, t0, a0); b0 = Vector512.FusedMultiplyAdd(g1, t0, b0);
                            a1 = Vector512.FusedMultiplyAdd(g0, t1, a1); b1 = Vector512.FusedMultiplyAdd(g1, t1, b1);
                            a2 = Vector512.FusedMultiplyAdd(g0, t2, a2); b2 = Vector512.FusedMultiplyAdd(g1, t2, b2);
                            a3 = Vector512.FusedMultiplyAdd(g0, t3, a3); b3 = Vector512.FusedMultiplyAdd(g1, t3, b3);
                            a4 = Vector512.FusedMultiplyAdd(g0, t4, a4); b4 = Vector512.FusedMultiplyAdd(g1, t4, b4);
                            a5 = Vector512.FusedMultiplyAdd(g0, t5, a5); b5 = Vector512.FusedMultiplyAdd(g1, t5, b5);
                            a6 = Vector512.FusedMultiplyAdd(g0, t6, a6); b6 = Vector512.FusedMultiplyAdd(g1, t6, b6);
                            a7 = Vector512.FusedMultiplyAdd(g0, t7, a7); b7 = Vector512.FusedMultiplyAdd(g1, t7, b7);
                            a8 = Vector512.FusedMultiplyAdd(g0, t8, a8); b8 = Vector512.FusedMultiplyAdd(g1, t8, b8);
                        }
                }
                float* p = (float*)ps + (group * oc + o) * 9;
                p[0] = Vector512.Sum(a0); p[1] = Vector512.Sum(a1); p[2] = Vector512.Sum(a2); p[3] = Vector512.Sum(a3); p[4] = Vector512.Sum(a4);
                p[5] = Vector512.Sum(a5); p[6] = Vector512.Sum(a6); p[7] = Vector512.Sum(a7); p[8] = Vector512.Sum(a8);
                if (second == o) continue;
                p += 9;
                p[0] = Vector512.Sum(b0); p[1] = Vector512.Sum(b1); p[2] = Vector512.Sum(b2); p[3] = Vector512.Sum(b3); p[4] = Vector512.Sum(b4);
                p[5] = Vector512.Sum(b5); p[6] = Vector512.Sum(b6); p[7] = Vector512.Sum(b7); p[8] = Vector512.Sum(b8);
            }
        });
        }
        for (int group = 0; group < groups; group++)
            for (int i = 0; i < oc * 9; i++) dw[i] += partial[group * oc * 9 + i];
    }

    // The nine taps of 16 output pixels (row r, columns x0..x0+15): t{kh·3 + kw} = x[r + kh − 1, x0 + j + kw − 1], 0
    // outside the image and past its width. Out parameters, not a struct: the JIT kept a struct's vectors on the stack.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadTaps(float* image, int h, int width, int r, int x0, out Vector512<float> t0, out Vector512<float> t1,
        out Vector512<float> t2, out Vector512<float> t3, out Vector512<float> t4, out Vector512<float> t5, out Vector512<float> t6,
        out Vector512<float> t7, out Vector512<float> t8)
    {
        var column = Vector512<int>.Indices + Vector512.Create(x0 - 1);
        var w = Vector512.Create(width);
        // Column c = x0 + j + kw − 1 inside [0, width): kw = 0 needs c ≥ 0 too.
        var left = (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, w)).AsSingle();
        var middle = Vector512.LessThan(column + Vector512<int>.One, w).AsSingle();
        var right = Vector512.LessThan(column + Vector512.Create(2), w).AsSingle();
        var zero = Vector512<float>.Zero;
        float* row = image + (long)r * width + x0;
        t3 = Avx512F.MaskLoad(row - 1, left, zero);
        t4 = Avx512F.MaskLoad(row, middle, zero);
        t5 = Avx512F.MaskLoad(row + 1, right, zero);
        if (r > 0)
        {
            float* above = row - width;
            t0 = Avx512F.MaskLoad(above - 1, left, zero);
            t1 = Avx512F.MaskLoad(above, middle, zero);
            t2 = Avx512F.MaskLoad(above + 1, right, zero);
        }
        else t0 = t1 = t2 = zero;
        if (r + 1 < h)
        {
            float* below = row + width;
            t6 = Avx512F.MaskLoad(below - 1, left, zero);
            t7 = Avx512F.MaskLoad(below, middle, zero);
            t8 = Avx512F.MaskLoad(below + 1, right, zero);
        }
        else t6 = t7 = t8 = zero;
    }
}
