using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels;

/// <summary>
/// Batch normalisation over (N,H,W) for each channel of an NCHW tensor:
/// y = γ·x̂ + β with x̂ = (x − μ)·σ⁻¹, σ⁻¹ = 1/√(var + eps). Channels are spread over the worker threads; each
/// plane is reduced in <see cref="Vector{T}"/> lanes and the per-plane sums are added in double, so large batches
/// of float activations do not lose the mean.
/// </summary>
public static unsafe class BatchNormKernel
{
    /// <summary>
    /// Batch mean and biased variance per channel in one pass over the data: Σ(x − K) and Σ(x − K)² with K the
    /// channel's first value, so var = E[(x − K)²] − E[x − K]² has no catastrophic cancellation (K lies within the data,
    /// |μ − K| is of the order of σ), where E[x²] − μ² would lose digits whenever |μ| ≫ σ.
    /// </summary>
    public static void Statistics<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, Span<double> mean, Span<double> variance)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double count = (double)batch * plane;
        var shift = new T[channels];
        for (int c = 0; c < channels; c++) shift[c] = x[c * plane];
        fixed (T* xp = x)
        {
            var sums = ReduceByChannel(batch, channels, plane, (T*)xp, null, (xs, _, c) => SumAndSquares(xs, shift[c]));
            for (int c = 0; c < channels; c++)
            {
                double m1 = sums[c].A / count, m2 = sums[c].B / count;
                mean[c] = double.CreateTruncating(shift[c]) + m1;
                variance[c] = Math.Max(0, m2 - m1 * m1);
            }
        }
    }

    private static (T Sum, T Squares) SumAndSquares<T>(ReadOnlySpan<T> x, T k) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T s = T.Zero, sq = T.Zero;
        if (Vector.IsHardwareAccelerated)
        {
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            Vector<T> acc = Vector<T>.Zero, accSq = Vector<T>.Zero, vk = new(k);
            for (int v = 0; v < xv.Length; v++) { var d = xv[v] - vk; acc += d; accSq += d * d; }
            s = Vector.Sum(acc); sq = Vector.Sum(accSq);
            i = xv.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++) { T d = x[i] - k; s += d; sq += d * d; }
        return (s, sq);
    }

    private delegate (T A, T B) PlaneReduction<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y, int channel);

    /// <summary>
    /// Σ over the batch of a per-plane reduction, per channel, walking memory in order (image by image) so that
    /// the prefetchers keep up; images are split over the worker threads, each with its own partial sums, added in
    /// double. Reading channel by channel instead jumps C·H·W floats between planes, and small planes then wait
    /// on memory latency (measured 6x slower on 14x14 planes).
    /// </summary>
    private static (double A, double B)[] ReduceByChannel<T>(int batch, int channels, int plane, T* x, T* y, PlaneReduction<T> reduce)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int groups = Math.Max(1, Math.Min(Engine.Threads, batch));
        var partial = new (double A, double B)[groups * channels];
        nint px = (nint)x, py = (nint)y;
        WorkerPool.For(groups, group =>
        {
            for (int n = group * batch / groups; n < (group + 1) * batch / groups; n++)
                for (int c = 0; c < channels; c++)
                {
                    long o = ((long)n * channels + c) * plane;
                    var (a, b) = reduce(new ReadOnlySpan<T>((T*)px + o, plane), py == 0 ? default : new ReadOnlySpan<T>((T*)py + o, plane), c);
                    ref var slot = ref partial[group * channels + c];
                    slot.A += double.CreateTruncating(a);
                    slot.B += double.CreateTruncating(b);
                }
        });
        var total = new (double A, double B)[channels];
        for (int g = 0; g < groups; g++)
            for (int c = 0; c < channels; c++)
            {
                total[c].A += partial[g * channels + c].A;
                total[c].B += partial[g * channels + c].B;
            }
        return total;
    }

    /// <summary>
    /// y = x·scale[c] + shift[c]: the normalisation with γ, β, μ and σ⁻¹ folded into one scale and shift; with
    /// <paramref name="relu"/>, y = max(that, 0), the ReLU that follows a block's first BN, in the same pass. With a
    /// <paramref name="residual"/> (x's shape), y = max(x·scale + shift + residual, 0) (relu must be set): a residual
    /// block's last BN, add and ReLU, rounded as the three passes would be.
    /// </summary>
    public static void ScaleShift<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, ReadOnlySpan<T> scale, ReadOnlySpan<T> shift, Span<T> y,
        bool relu = false, ReadOnlySpan<T> residual = default) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool adds = !residual.IsEmpty;
        if (adds && (!relu || residual.Length < x.Length))
            throw new ArgumentException($"a residual needs the ReLU and x's {x.Length} values, got relu={relu} and {residual.Length} values");
        fixed (T* xp = x) fixed (T* sp = scale) fixed (T* hp = shift) fixed (T* yp = y) fixed (T* rp = residual)
        {
            nint px = (nint)xp, ps = (nint)sp, ph = (nint)hp, py = (nint)yp, pr = (nint)rp;
            ForPlanes(batch * channels, plane, nc =>
            {
                int c = nc % channels;
                var src = new ReadOnlySpan<T>((T*)px + (long)nc * plane, plane);
                var dst = new Span<T>((T*)py + (long)nc * plane, plane);
                var res = adds ? new ReadOnlySpan<T>((T*)pr + (long)nc * plane, plane) : default;
                T a = ((T*)ps)[c], b = ((T*)ph)[c];
                int i = 0;
                if (Vector.IsHardwareAccelerated)
                {
                    var sv = MemoryMarshal.Cast<T, Vector<T>>(src);
                    var dv = MemoryMarshal.Cast<T, Vector<T>>(dst);
                    Vector<T> va = new(a), vb = new(b);
                    if (adds)
                    {
                        var rv = MemoryMarshal.Cast<T, Vector<T>>(res);
                        for (int v = 0; v < sv.Length; v++) dv[v] = Vector.Max(Normalise(sv[v], va, vb) + rv[v], Vector<T>.Zero);
                    }
                    else if (relu) for (int v = 0; v < sv.Length; v++) dv[v] = Vector.Max(Normalise(sv[v], va, vb), Vector<T>.Zero);
                    else for (int v = 0; v < sv.Length; v++) dv[v] = Normalise(sv[v], va, vb);
                    i = sv.Length * Vector<T>.Count;
                }
                for (; i < plane; i++)
                {
                    T v = Normalise(src[i], a, b);
                    if (adds) v += res[i];
                    dst[i] = relu && !(v > T.Zero) ? T.Zero : v;
                }
            });
        }
    }

    // x·scale + shift: the one expression of the normalisation, so that the fused ReLU's backward, which recomputes it
    // for its mask, rounds exactly as the forward pass did (and zeroes the same elements).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Normalise<T>(Vector<T> x, Vector<T> scale, Vector<T> shift) where T : unmanaged, IFloatingPointIeee754<T> => x * scale + shift;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Normalise<T>(T x, T scale, T shift) where T : unmanaged, IFloatingPointIeee754<T> => x * scale + shift;

    // dy where the fused ReLU passed its input (normalised x positive), else 0.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> ReluMasked<T>(Vector<T> dy, Vector<T> x, Vector<T> scale, Vector<T> shift) where T : unmanaged, IFloatingPointIeee754<T> =>
        Vector.ConditionalSelect(Vector.GreaterThan(Normalise(x, scale, shift), Vector<T>.Zero), dy, Vector<T>.Zero);

    /// <summary>
    /// Runs body(plane index) for every plane, several small planes per worker task (at least
    /// <see cref="Elementwise.ChunkSize"/> / 4 values each): one task per 7x7 plane costs more in dispatch than it computes.
    /// </summary>
    private static void ForPlanes(int planes, int plane, Action<int> body)
    {
        int perTask = Math.Max(1, (Elementwise.ChunkSize / 4) / Math.Max(1, plane));
        WorkerPool.For((planes + perTask - 1) / perTask, task =>
        {
            for (int nc = task * perTask, end = Math.Min(planes, nc + perTask); nc < end; nc++) body(nc);
        });
    }

    /// <summary>
    /// dγ += Σ dy·x̂ and dβ += Σ dy per channel. When <paramref name="training"/>,
    /// dx = γσ⁻¹·(dy − Σdy/m − x̂·Σ(dy·x̂)/m) (the batch statistics depend on x); otherwise dx = γσ⁻¹·dy.
    /// x̂ is recomputed from x − μ (not from x and μ separately), which keeps the subtraction exact enough in float.
    /// Non-empty reluScale and reluShift are those of a fused BN + ReLU (<see cref="ScaleShift{T}"/> with relu): dy is
    /// then taken as 0 where x·scale + shift is not positive, which is the ReLU's backward without a pass of its own.
    /// The mask is recomputed from x with ScaleShift's arithmetic (the same rounding, so the same zeros) rather than
    /// read from the ReLU's output: one stream fewer in both passes.
    /// </summary>
    public static void Backward<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, ReadOnlySpan<T> dy,
        ReadOnlySpan<double> mean, ReadOnlySpan<double> invStd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dx, Span<T> dgamma, Span<T> dbeta, ReadOnlySpan<T> reluScale = default, ReadOnlySpan<T> reluShift = default)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool masked = !reluScale.IsEmpty;
        if (masked && (reluScale.Length < channels || reluShift.Length < channels))
            throw new ArgumentException($"the fused ReLU needs a scale and a shift per channel ({channels}), got {reluScale.Length} and {reluShift.Length}");
        T[] ra = masked ? reluScale[..channels].ToArray() : [], rb = masked ? reluShift[..channels].ToArray() : [];
        double m = (double)batch * plane;
        var muT = new T[channels];
        for (int c = 0; c < channels; c++) muT[c] = T.CreateTruncating(mean[c]);
        var a = new T[channels];
        var b = new T[channels];
        var k = new T[channels];
        if (ByChannel(batch, channels, plane, sizeof(T)))
        {
            BackwardByChannel(batch, channels, plane, x, dy, muT, invStd, gamma, training, dx, dgamma, dbeta, masked, ra, rb);
            return;
        }
        fixed (T* xp = x) fixed (T* dyp = dy) fixed (T* dxp = dx)
        {
            // Σdy and Σdy·(x − μ) per channel, in memory order.
            var sums = ReduceByChannel(batch, channels, plane, (T*)dyp, (T*)xp,
                (d, xs, c) => SumAndCentredDot(d, xs, muT[c], masked, masked ? ra[c] : T.Zero, masked ? rb[c] : T.Zero));
            for (int c = 0; c < channels; c++)
            {
                double sumDy = sums[c].A, sumDyXhat = sums[c].B * invStd[c];
                dgamma[c] += T.CreateTruncating(sumDyXhat);
                dbeta[c] += T.CreateTruncating(sumDy);
                // dx = a·dy + b·(x − μ) + k per element.
                double g = double.CreateTruncating(gamma[c]) * invStd[c];
                a[c] = T.CreateTruncating(g);
                b[c] = training ? T.CreateTruncating(-g * invStd[c] * sumDyXhat / m) : T.Zero;
                k[c] = training ? T.CreateTruncating(-g * sumDy / m) : T.Zero;
            }
            if (dx.IsEmpty) return;
            nint px = (nint)xp, pdy = (nint)dyp, pdx = (nint)dxp;
            ForPlanes(batch * channels, plane, nc =>
            {
                int c = nc % channels;
                long o = (long)nc * plane;
                Combine(new ReadOnlySpan<T>((T*)pdy + o, plane), new ReadOnlySpan<T>((T*)px + o, plane), muT[c], a[c], b[c], k[c],
                    new Span<T>((T*)pdx + o, plane), masked, masked ? ra[c] : T.Zero, masked ? rb[c] : T.Zero);
            });
        }
    }

    /// <summary>
    /// Tensors from this many bytes, with planes of at least <see cref="ByChannelMinPlane"/> values, take the backward
    /// pass channel by channel (<see cref="BackwardByChannel"/>). Internal so that a test can send every shape one way
    /// or the other.
    /// </summary>
    internal static long ByChannelFromBytes = 4L << 20;
    internal static int ByChannelMinPlane = 512;

    private static bool ByChannel(int batch, int channels, int plane, int elementSize) =>
        plane >= ByChannelMinPlane && (long)batch * channels * plane * elementSize >= ByChannelFromBytes;

    /// <summary>
    /// <see cref="Backward{T}"/> channel by channel over the worker threads: a channel's two sums, then its dx while
    /// its dy and x are still in L2, instead of two passes over the whole tensors, the second reading them from memory
    /// again. The sums are grouped over the images as <see cref="ReduceByChannel"/> groups them, so the results are
    /// the same bits (tested). resnet20's first-stage BNs (6.4 MB, 400 KB a channel at batch 128) ran their backward
    /// 0.78–0.90x (`bench/run.sh --ab BatchNormKernel.ByChannelFromBytes=9223372036854775807,4194304 --ab-work
    /// r20-train --ab-layers --rounds 16`); at 14x14 and 7x7 (3.2 and 1.6 MB, planes of 196 and 49 values) a first
    /// version without the size gate was 1.15–1.57x slower: those tensors stay in cache either way, and a channel's
    /// small planes lie far apart, so they keep the two passes. The forward pass gained nothing this way (its input
    /// comes straight from the convolution, still in cache) and keeps its two passes.
    /// </summary>
    private static void BackwardByChannel<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, T[] muT,
        ReadOnlySpan<double> invStd, ReadOnlySpan<T> gamma, bool training, Span<T> dx, Span<T> dgamma, Span<T> dbeta, bool masked, T[] ra, T[] rb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double m = (double)batch * plane;
        var inverse = invStd[..channels].ToArray();
        var g0 = gamma[..channels].ToArray();
        int groups = Math.Max(1, Math.Min(Engine.Threads, batch));
        fixed (T* xp = x) fixed (T* dyp = dy) fixed (T* dxp = dx) fixed (T* dgp = dgamma) fixed (T* dbp = dbeta)
        {
            nint px = (nint)xp, pdy = (nint)dyp, pdx = (nint)dxp, pdg = (nint)dgp, pdb = (nint)dbp;
            bool hasDx = !dx.IsEmpty;
            WorkerPool.For(channels, c =>
            {
                T mu = muT[c], rac = masked ? ra[c] : T.Zero, rbc = masked ? rb[c] : T.Zero;
                // Σdy and Σdy·(x − μ): each group of images (as split over the threads in ReduceByChannel) summed in
                // double, then the groups in order. The next image's plane is prefetched (planes are C·H·W apart).
                double sumDy = 0, sumCentred = 0;
                for (int g = 0; g < groups; g++)
                {
                    double partA = 0, partB = 0;
                    for (int n = g * batch / groups; n < (g + 1) * batch / groups; n++)
                    {
                        long o = ((long)n * channels + c) * plane;
                        if (n + 1 < batch)
                        {
                            Prefetch((T*)pdy + o + (long)channels * plane, plane);
                            Prefetch((T*)px + o + (long)channels * plane, plane);
                        }
                        var (a, b) = SumAndCentredDot(new ReadOnlySpan<T>((T*)pdy + o, plane), new ReadOnlySpan<T>((T*)px + o, plane), mu, masked, rac, rbc);
                        partA += double.CreateTruncating(a);
                        partB += double.CreateTruncating(b);
                    }
                    sumDy += partA;
                    sumCentred += partB;
                }
                double sumDyXhat = sumCentred * inverse[c];
                ((T*)pdg)[c] += T.CreateTruncating(sumDyXhat);
                ((T*)pdb)[c] += T.CreateTruncating(sumDy);
                if (!hasDx) return;
                double gc = double.CreateTruncating(g0[c]) * inverse[c];
                T ac = T.CreateTruncating(gc);
                T bc = training ? T.CreateTruncating(-gc * inverse[c] * sumDyXhat / m) : T.Zero;
                T kc = training ? T.CreateTruncating(-gc * sumDy / m) : T.Zero;
                for (int n = 0; n < batch; n++)
                {
                    long o = ((long)n * channels + c) * plane;
                    Combine(new ReadOnlySpan<T>((T*)pdy + o, plane), new ReadOnlySpan<T>((T*)px + o, plane), mu, ac, bc, kc,
                        new Span<T>((T*)pdx + o, plane), masked, rac, rbc);
                }
            });
        }
    }

    // Asks for the cache lines of `count` values at p (nothing where SSE is missing).
    private static void Prefetch<T>(T* p, int count) where T : unmanaged
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        byte* b = (byte*)p, end = b + (long)count * sizeof(T);
        for (; b < end; b += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch0(b);
    }

    // Σdy and Σdy·(x − μ) over one plane; dy masked to 0 where the fused ReLU's x·ra + rb is not positive.
    private static (T Sum, T CentredDot) SumAndCentredDot<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T mu, bool masked, T ra, T rb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T s = T.Zero, sx = T.Zero;
        if (Vector.IsHardwareAccelerated)
        {
            var dv = MemoryMarshal.Cast<T, Vector<T>>(dy);
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            Vector<T> acc = Vector<T>.Zero, accX = Vector<T>.Zero, vm = new(mu), va = new(ra), vb = new(rb);
            for (int v = 0; v < dv.Length; v++)
            {
                var d = masked ? ReluMasked(dv[v], xv[v], va, vb) : dv[v];
                acc += d; accX += d * (xv[v] - vm);
            }
            s = Vector.Sum(acc); sx = Vector.Sum(accX);
            i = dv.Length * Vector<T>.Count;
        }
        for (; i < dy.Length; i++)
        {
            T d = masked && !(Normalise(x[i], ra, rb) > T.Zero) ? T.Zero : dy[i];
            s += d; sx += d * (x[i] - mu);
        }
        return (s, sx);
    }

    private static void Combine<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T mu, T a, T b, T k, Span<T> dx, bool masked, T ra, T rb)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var dv = MemoryMarshal.Cast<T, Vector<T>>(dy);
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            var ov = MemoryMarshal.Cast<T, Vector<T>>(dx);
            Vector<T> va = new(a), vb = new(b), vk = new(k), vm = new(mu), vra = new(ra), vrb = new(rb);
            for (int v = 0; v < dv.Length; v++)
            {
                var d = masked ? ReluMasked(dv[v], xv[v], vra, vrb) : dv[v];
                ov[v] = va * d + vb * (xv[v] - vm) + vk;
            }
            i = dv.Length * Vector<T>.Count;
        }
        for (; i < dy.Length; i++)
        {
            T d = masked && !(Normalise(x[i], ra, rb) > T.Zero) ? T.Zero : dy[i];
            dx[i] = a * d + b * (x[i] - mu) + k;
        }
    }
}
