using System.Numerics;
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
    /// <summary>Batch mean and biased variance per channel (two passes: the mean, then squared deviations from it).</summary>
    public static void Statistics<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, Span<double> mean, Span<double> variance)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double count = (double)batch * plane;
        fixed (T* xp = x) fixed (double* mp = mean) fixed (double* vp = variance)
        {
            nint px = (nint)xp, pm = (nint)mp, pv = (nint)vp;
            int length = x.Length;
            WorkerPool.For(channels, c =>
            {
                var xs = new ReadOnlySpan<T>((T*)px, length);
                double sum = 0;
                for (int n = 0; n < batch; n++) sum += double.CreateTruncating(Sum(xs.Slice((n * channels + c) * plane, plane)));
                double mu = sum / count;
                T muT = T.CreateTruncating(mu);
                double sq = 0;
                for (int n = 0; n < batch; n++) sq += double.CreateTruncating(SumSquaredDeviation(xs.Slice((n * channels + c) * plane, plane), muT));
                ((double*)pm)[c] = mu;
                ((double*)pv)[c] = sq / count;
            });
        }
    }

    /// <summary>y = x·scale[c] + shift[c]: the normalisation with γ, β, μ and σ⁻¹ folded into one scale and shift.</summary>
    public static void ScaleShift<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, ReadOnlySpan<T> scale, ReadOnlySpan<T> shift, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        fixed (T* xp = x) fixed (T* sp = scale) fixed (T* hp = shift) fixed (T* yp = y)
        {
            nint px = (nint)xp, ps = (nint)sp, ph = (nint)hp, py = (nint)yp;
            WorkerPool.For(batch * channels, nc =>
            {
                int c = nc % channels;
                var src = new ReadOnlySpan<T>((T*)px + (long)nc * plane, plane);
                var dst = new Span<T>((T*)py + (long)nc * plane, plane);
                T a = ((T*)ps)[c], b = ((T*)ph)[c];
                int i = 0;
                if (Vector.IsHardwareAccelerated)
                {
                    var sv = MemoryMarshal.Cast<T, Vector<T>>(src);
                    var dv = MemoryMarshal.Cast<T, Vector<T>>(dst);
                    Vector<T> va = new(a), vb = new(b);
                    for (int v = 0; v < sv.Length; v++) dv[v] = sv[v] * va + vb;
                    i = sv.Length * Vector<T>.Count;
                }
                for (; i < plane; i++) dst[i] = src[i] * a + b;
            });
        }
    }

    /// <summary>
    /// dγ += Σ dy·x̂ and dβ += Σ dy per channel. When <paramref name="training"/>,
    /// dx = γσ⁻¹·(dy − Σdy/m − x̂·Σ(dy·x̂)/m) (the batch statistics depend on x); otherwise dx = γσ⁻¹·dy.
    /// x̂ is recomputed from x − μ (not from x and μ separately), which keeps the subtraction exact enough in float.
    /// </summary>
    public static void Backward<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, ReadOnlySpan<T> dy,
        ReadOnlySpan<double> mean, ReadOnlySpan<double> invStd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dx, Span<T> dgamma, Span<T> dbeta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double m = (double)batch * plane;
        bool hasDx = !dx.IsEmpty;
        fixed (T* xp = x) fixed (T* dyp = dy) fixed (double* mp = mean) fixed (double* ip = invStd) fixed (T* gp = gamma)
        fixed (T* dxp = dx) fixed (T* dgp = dgamma) fixed (T* dbp = dbeta)
        {
            nint px = (nint)xp, pdy = (nint)dyp, pm = (nint)mp, pi = (nint)ip, pg = (nint)gp, pdx = (nint)dxp, pdg = (nint)dgp, pdb = (nint)dbp;
            WorkerPool.For(channels, c =>
            {
                double mu = ((double*)pm)[c], inv = ((double*)pi)[c];
                T muT = T.CreateTruncating(mu);
                double sumDy = 0, sumDyXc = 0;
                for (int n = 0; n < batch; n++)
                {
                    long o = ((long)n * channels + c) * plane;
                    var (s, sx) = SumAndCentredDot(new ReadOnlySpan<T>((T*)pdy + o, plane), new ReadOnlySpan<T>((T*)px + o, plane), muT);
                    sumDy += double.CreateTruncating(s);
                    sumDyXc += double.CreateTruncating(sx);
                }
                double sumDyXhat = sumDyXc * inv;
                ((T*)pdg)[c] += T.CreateTruncating(sumDyXhat);
                ((T*)pdb)[c] += T.CreateTruncating(sumDy);
                if (!hasDx) return;
                double g = double.CreateTruncating(((T*)pg)[c]) * inv;
                // dx = a·dy + b·(x − μ) + k per element.
                T a = T.CreateTruncating(g);
                T b = training ? T.CreateTruncating(-g * inv * sumDyXhat / m) : T.Zero;
                T k = training ? T.CreateTruncating(-g * sumDy / m) : T.Zero;
                for (int n = 0; n < batch; n++)
                {
                    long o = ((long)n * channels + c) * plane;
                    Combine(new ReadOnlySpan<T>((T*)pdy + o, plane), new ReadOnlySpan<T>((T*)px + o, plane), muT, a, b, k, new Span<T>((T*)pdx + o, plane));
                }
            });
        }
    }

    private static T Sum<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T s = T.Zero;
        if (Vector.IsHardwareAccelerated)
        {
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            Vector<T> acc = Vector<T>.Zero;
            for (int v = 0; v < xv.Length; v++) acc += xv[v];
            s = Vector.Sum(acc);
            i = xv.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    private static T SumSquaredDeviation<T>(ReadOnlySpan<T> x, T mu) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T s = T.Zero;
        if (Vector.IsHardwareAccelerated)
        {
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            Vector<T> acc = Vector<T>.Zero, vm = new(mu);
            for (int v = 0; v < xv.Length; v++) { var d = xv[v] - vm; acc += d * d; }
            s = Vector.Sum(acc);
            i = xv.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++) { T d = x[i] - mu; s += d * d; }
        return s;
    }

    private static (T Sum, T CentredDot) SumAndCentredDot<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T mu) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        T s = T.Zero, sx = T.Zero;
        if (Vector.IsHardwareAccelerated)
        {
            var dv = MemoryMarshal.Cast<T, Vector<T>>(dy);
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            Vector<T> acc = Vector<T>.Zero, accX = Vector<T>.Zero, vm = new(mu);
            for (int v = 0; v < dv.Length; v++) { acc += dv[v]; accX += dv[v] * (xv[v] - vm); }
            s = Vector.Sum(acc); sx = Vector.Sum(accX);
            i = dv.Length * Vector<T>.Count;
        }
        for (; i < dy.Length; i++) { s += dy[i]; sx += dy[i] * (x[i] - mu); }
        return (s, sx);
    }

    private static void Combine<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T mu, T a, T b, T k, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var dv = MemoryMarshal.Cast<T, Vector<T>>(dy);
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            var ov = MemoryMarshal.Cast<T, Vector<T>>(dx);
            Vector<T> va = new(a), vb = new(b), vk = new(k), vm = new(mu);
            for (int v = 0; v < dv.Length; v++) ov[v] = va * dv[v] + vb * (xv[v] - vm) + vk;
            i = dv.Length * Vector<T>.Count;
        }
        for (; i < dy.Length; i++) dx[i] = a * dy[i] + b * (x[i] - mu) + k;
    }
}
