using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNetSharp.Kernels;

/// <summary>Max pooling and global average pooling on NCHW planes.</summary>
public static class PoolKernels
{
    /// <summary>
    /// y[oy,ox] = max over the window, padding counting as −∞. <paramref name="argmax"/> records the flat index in
    /// the plane of the element chosen: the first maximum in row-major window order, as PyTorch's CPU kernel does
    /// (it only replaces on a strictly greater value), so ties route the gradient the same way.
    /// </summary>
    public static unsafe void MaxPoolForward<T>(int planes, int h, int w, int kernel, int stride, int pad, ReadOnlySpan<T> x, Span<T> y, Span<int> argmax)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int oh = (h + 2 * pad - kernel) / stride + 1, ow = (w + 2 * pad - kernel) / stride + 1;
        if (typeof(T) == typeof(float) && kernel == 3 && stride == 2 && pad == 1 && Vector.IsHardwareAccelerated)
        {
            fixed (T* xp = x) fixed (T* yp = y) fixed (int* ap = argmax)
                MaxPool3x3Stride2((float*)xp, (float*)yp, (int*)ap, planes, h, w, oh, ow);
            return;
        }
        fixed (T* xp = x) fixed (T* yp = y) fixed (int* ap = argmax)
        {
            nint px = (nint)xp, py = (nint)yp, pa = (nint)ap;
            Runtime.WorkerPool.For(planes, p =>
            {
                T* src = (T*)px + (long)p * h * w;
                T* dst = (T*)py + (long)p * oh * ow;
                int* arg = (int*)pa + (long)p * oh * ow;
                for (int oy = 0; oy < oh; oy++)
                {
                    int y0 = oy * stride - pad;
                    int ky0 = Math.Max(0, -y0), ky1 = Math.Min(kernel, h - y0);
                    for (int ox = 0; ox < ow; ox++)
                    {
                        int x0 = ox * stride - pad;
                        int kx0 = Math.Max(0, -x0), kx1 = Math.Min(kernel, w - x0);
                        // The first element of the window seeds the maximum; later ones replace it only when strictly
                        // greater or NaN (!(v <= best)), so ties keep the first maximum in row-major order and a NaN
                        // propagates, as in PyTorch's CPU kernel.
                        int bestIndex = (y0 + ky0) * w + x0 + kx0;
                        T best = src[bestIndex];
                        for (int ky = ky0; ky < ky1; ky++)
                        {
                            T* row = src + (y0 + ky) * w + x0;
                            for (int kx = kx0; kx < kx1; kx++)
                            {
                                T v = row[kx];
                                if (!(v <= best) && !T.IsNaN(best)) { best = v; bestIndex = (y0 + ky) * w + x0 + kx; }
                            }
                        }
                        dst[oy * ow + ox] = best;
                        arg[oy * ow + ox] = bestIndex;
                    }
                }
            });
        }
    }

    /// <summary>
    /// The ResNet stem's 3x3, stride-2, padding-1 pool in float, vectorised along each output row: the three
    /// candidates of output column j are input columns 2j − 1, 2j and 2j + 1, contiguous across j once a row is split
    /// into its even and odd columns. The scalar loop above compared data-dependently and mispredicted its way to
    /// 4 ns per element. Same rules: first maximum wins ties, NaN propagates.
    /// </summary>
    private static unsafe void MaxPool3x3Stride2(float* x, float* y, int* argmax, int planes, int h, int w, int oh, int ow)
    {
        nint xs = (nint)x, ys = (nint)y, as_ = (nint)argmax;
        Runtime.WorkerPool.For(planes, p =>
        {
            float* src = (float*)xs + (long)p * h * w;
            float* dst = (float*)ys + (long)p * oh * ow;
            int* arg = (int*)as_ + (long)p * oh * ow;
            if (Avx512F.IsSupported) MaxPool3x3Stride2Registers(src, dst, arg, h, w, oh, ow);
            else MaxPool3x3Stride2Staged(src, dst, arg, h, w, oh, ow);
        });
    }

    /// <summary>
    /// One plane on AVX-512, 16 output columns at a time, all in registers: each input row's columns 2j − 1, 2j and
    /// 2j + 1 come from four masked reads (the image's edges read as −∞) and three two-source permutes. Staging the
    /// split rows in memory instead (the path below) made every read straddle two recent stores of other sizes, and
    /// the store-to-load stalls made resnet18's stem pool at batch 16 take 12.5–13.5 ms instead of 7.
    /// </summary>
    private static unsafe void MaxPool3x3Stride2Registers(float* src, float* dst, int* arg, int h, int w, int oh, int ow)
    {
        var negativeInfinity = Vector512.Create(float.NegativeInfinity);
        var lanes = Vector512<int>.Indices;
        var width = Vector512.Create((uint)w);
        for (int j0 = 0; j0 < ow; j0 += 16)
        {
            // Which lanes of each read lie in the row: columns [2j0, 2j0 + 32) and, shifted by one, [2j0 − 1, 2j0 + 31).
            var even0 = lanes + Vector512.Create(2 * j0);
            var inLow = Vector512.LessThan(even0.AsUInt32(), width).AsSingle();
            var inHigh = Vector512.LessThan((even0 + Vector512.Create(16)).AsUInt32(), width).AsSingle();
            var inLowShifted = Vector512.LessThan((even0 - Vector512<int>.One).AsUInt32(), width).AsSingle();
            var inHighShifted = Vector512.LessThan((even0 + Vector512.Create(15)).AsUInt32(), width).AsSingle();
            var inOutput = Vector512.LessThan(lanes + Vector512.Create(j0), Vector512.Create(ow));
            var centre = (lanes + Vector512.Create(j0)) * 2;   // input column 2j of each lane's output column j
            for (int oy = 0; oy < oh; oy++)
            {
                // Seed: −∞ with the index of the window's first valid centre column, so that padding (−∞) never wins
                // and an all −∞ window still routes its gradient inside the image.
                var best = negativeInfinity;
                var bestIndex = Vector512.Create(Math.Max(0, oy * 2 - 1) * w) + centre;
                for (int ky = 0; ky < 3; ky++)
                {
                    int iy = oy * 2 - 1 + ky;
                    if ((uint)iy >= (uint)h) continue;
                    float* at = src + (long)iy * w + 2 * j0;
                    var low = Avx512F.MaskLoad(at, inLow, negativeInfinity);
                    var high = Avx512F.MaskLoad(at + 16, inHigh, negativeInfinity);
                    var lowShifted = Avx512F.MaskLoad(at - 1, inLowShifted, negativeInfinity);
                    var highShifted = Avx512F.MaskLoad(at + 15, inHighShifted, negativeInfinity);
                    var rowIndex = Vector512.Create(iy * w) + centre;
                    // Candidates in window order (kx = 0, 1, 2): input columns 2j − 1, 2j, 2j + 1.
                    Take(Avx512F.PermuteVar16x32x2(lowShifted, Packed.Deinterleave.Evens, highShifted), rowIndex - Vector512<int>.One, ref best, ref bestIndex);
                    Take(Avx512F.PermuteVar16x32x2(low, Packed.Deinterleave.Evens, high), rowIndex, ref best, ref bestIndex);
                    Take(Avx512F.PermuteVar16x32x2(low, Packed.Deinterleave.Odds, high), rowIndex + Vector512<int>.One, ref best, ref bestIndex);
                }
                Avx512F.MaskStore(dst + (long)oy * ow + j0, inOutput.AsSingle(), best);
                Avx512F.MaskStore(arg + (long)oy * ow + j0, inOutput, bestIndex);
            }
        }
    }

    // Replace when strictly greater, or when the candidate is NaN and the best is not.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Take(Vector512<float> candidate, Vector512<int> index, ref Vector512<float> best, ref Vector512<int> bestIndex)
    {
        var take = Vector512.GreaterThan(candidate, best).AsInt32() |
                   (~Vector512.Equals(candidate, candidate).AsInt32() & Vector512.Equals(best, best).AsInt32());
        best = Vector512.ConditionalSelect(take.AsSingle(), candidate, best);
        bestIndex = Vector512.ConditionalSelect(take, index, bestIndex);
    }


    /// <summary>One plane with Vector&lt;T&gt; (no AVX-512): each input row split once into even and odd columns in memory.</summary>
    private static unsafe void MaxPool3x3Stride2Staged(float* src, float* dst, int* arg, int h, int w, int oh, int ow)
    {
        int half = ow + 1;
        int L = Vector<float>.Count;
        // even[j] = row[2j], odd[j + 1] = row[2j + 1] (odd[0] is the left padding); −∞ past the row's end.
        float* even = stackalloc float[half + L];
        float* odd = stackalloc float[half + L + 1];
        float* best = stackalloc float[ow + L];
        int* bestIndex = stackalloc int[ow + L];
        for (int oy = 0; oy < oh; oy++)
        {
            int firstRow = Math.Max(0, oy * 2 - 1);
            for (int j = 0; j < ow + L; j++) { best[j] = float.NegativeInfinity; bestIndex[j] = firstRow * w + 2 * j; }
            for (int ky = 0; ky < 3; ky++)
            {
                int iy = oy * 2 - 1 + ky;
                if ((uint)iy >= (uint)h) continue;
                float* row = src + (long)iy * w;
                odd[0] = float.NegativeInfinity;
                for (int j = 0; j < half + L - 1; j++)
                {
                    even[j] = 2 * j < w ? row[2 * j] : float.NegativeInfinity;
                    odd[j + 1] = 2 * j + 1 < w ? row[2 * j + 1] : float.NegativeInfinity;
                }
                for (int kx = 0; kx < 3; kx++)
                {
                    float* cand = kx == 1 ? even : odd + (kx == 0 ? 0 : 1);
                    var rowBase = new Vector<int>(iy * w + kx - 1);
                    for (int j = 0; j < ow; j += L)
                    {
                        var c = Unsafe.ReadUnaligned<Vector<float>>(cand + j);
                        var b = Unsafe.ReadUnaligned<Vector<float>>(best + j);
                        var idx = rowBase + (IndexRamp + new Vector<int>(j)) * 2;
                        var take = Vector.AsVectorInt32(Vector.GreaterThan(c, b)) |
                                   (~Vector.AsVectorInt32(Vector.Equals(c, c)) & Vector.AsVectorInt32(Vector.Equals(b, b)));
                        Unsafe.WriteUnaligned(best + j, Vector.ConditionalSelect(Vector.AsVectorSingle(take), c, b));
                        Unsafe.WriteUnaligned(bestIndex + j, Vector.ConditionalSelect(take, idx, Unsafe.ReadUnaligned<Vector<int>>(bestIndex + j)));
                    }
                }
            }
            Buffer.MemoryCopy(best, dst + (long)oy * ow, ow * sizeof(float), ow * sizeof(float));
            Buffer.MemoryCopy(bestIndex, arg + (long)oy * ow, ow * sizeof(int), ow * sizeof(int));
        }
    }

    private static readonly Vector<int> IndexRamp = CreateRamp();
    private static Vector<int> CreateRamp()
    {
        Span<int> r = stackalloc int[Vector<int>.Count];
        for (int i = 0; i < r.Length; i++) r[i] = i;
        return new Vector<int>(r);
    }

    /// <summary>dx (overwritten) receives each dy at the position its output took its maximum from.</summary>
    public static unsafe void MaxPoolBackward<T>(int planes, int inPlane, int outPlane, ReadOnlySpan<T> dy, ReadOnlySpan<int> argmax, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dy.Length < (long)planes * outPlane || argmax.Length < (long)planes * outPlane || dx.Length < (long)planes * inPlane)
            throw new ArgumentException($"max pool backward: {planes} planes of {inPlane} -> {outPlane} do not fit dy ({dy.Length}), argmax ({argmax.Length}), dx ({dx.Length})");
        fixed (T* dyp = dy) fixed (int* ap = argmax) fixed (T* dxp = dx)
        {
            nint pdy = (nint)dyp, pa = (nint)ap, pdx = (nint)dxp;
            // Planes over the threads, several per task: each plane's scatter stays within its own plane.
            int perTask = Math.Max(1, (1 << 14) / Math.Max(1, inPlane));
            Runtime.WorkerPool.For((planes + perTask - 1) / perTask, task =>
            {
                for (int p = task * perTask, end = Math.Min(planes, p + perTask); p < end; p++)
                {
                    var d = new Span<T>((T*)pdx + (long)p * inPlane, inPlane);
                    d.Clear();
                    T* g = (T*)pdy + (long)p * outPlane;
                    int* a = (int*)pa + (long)p * outPlane;
                    for (int o = 0; o < outPlane; o++) d[a[o]] += g[o];
                }
            });
        }
    }

    /// <summary>
    /// y[p] = mean of plane p, each plane summed in order. Planes go over the threads, four at a time per thread so that
    /// their four add chains overlap: one plane's chain alone waits on each add's latency (resnet20's 8192 planes of 49
    /// at batch 128, 1.6 MB, took 0.25 ms on one thread: 6.4 GB/s).
    /// </summary>
    public static unsafe void GlobalAverageForward<T>(int planes, int plane, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (x.Length < (long)planes * plane || y.Length < planes)
            throw new ArgumentException($"global average: {planes} planes of {plane} do not fit x ({x.Length}) or y ({y.Length})");
        T count = T.CreateTruncating(plane);
        fixed (T* xp = x) fixed (T* yp = y)
        {
            nint px = (nint)xp, py = (nint)yp;
            ForPlanes(planes, plane, (p0, p1) =>
            {
                T* src = (T*)px; T* dst = (T*)py;
                int p = p0;
                for (; p + 4 <= p1; p += 4)
                {
                    T* a = src + (long)p * plane;
                    T s0 = T.Zero, s1 = T.Zero, s2 = T.Zero, s3 = T.Zero;
                    for (int i = 0; i < plane; i++)
                    {
                        s0 += a[i]; s1 += a[plane + i]; s2 += a[2 * plane + i]; s3 += a[3 * plane + i];
                    }
                    dst[p] = s0 / count; dst[p + 1] = s1 / count; dst[p + 2] = s2 / count; dst[p + 3] = s3 / count;
                }
                for (; p < p1; p++)
                {
                    T sum = T.Zero;
                    for (int i = 0; i < plane; i++) sum += src[(long)p * plane + i];
                    dst[p] = sum / count;
                }
            });
        }
    }

    /// <summary>dx[p,·] = dy[p] / plane size, planes over the threads.</summary>
    public static unsafe void GlobalAverageBackward<T>(int planes, int plane, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (dy.Length < planes || dx.Length < (long)planes * plane)
            throw new ArgumentException($"global average backward: {planes} planes of {plane} do not fit dy ({dy.Length}) or dx ({dx.Length})");
        T count = T.CreateTruncating(plane);
        fixed (T* dyp = dy) fixed (T* dxp = dx)
        {
            nint pdy = (nint)dyp, pdx = (nint)dxp;
            ForPlanes(planes, plane, (p0, p1) =>
            {
                for (int p = p0; p < p1; p++) new Span<T>((T*)pdx + (long)p * plane, plane).Fill(((T*)pdy)[p] / count);
            });
        }
    }

    // body(first, end) over ranges of planes of about 16K values each, spread over the worker threads.
    private static void ForPlanes(int planes, int plane, Action<int, int> body)
    {
        int perTask = Math.Max(1, (1 << 14) / Math.Max(1, plane));
        Runtime.WorkerPool.For((planes + perTask - 1) / perTask, task => body(task * perTask, Math.Min(planes, (task + 1) * perTask)));
    }
}
