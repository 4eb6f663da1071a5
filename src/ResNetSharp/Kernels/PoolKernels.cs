using System.Numerics;

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

    /// <summary>dx (overwritten) receives each dy at the position its output took its maximum from.</summary>
    public static void MaxPoolBackward<T>(int planes, int inPlane, int outPlane, ReadOnlySpan<T> dy, ReadOnlySpan<int> argmax, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        dx.Clear();
        for (int p = 0; p < planes; p++)
        {
            var d = dx.Slice(p * inPlane, inPlane);
            for (int o = 0; o < outPlane; o++) d[argmax[p * outPlane + o]] += dy[p * outPlane + o];
        }
    }

    /// <summary>y[p] = mean of plane p.</summary>
    public static void GlobalAverageForward<T>(int planes, int plane, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int p = 0; p < planes; p++)
        {
            T sum = T.Zero;
            foreach (var v in x.Slice(p * plane, plane)) sum += v;
            y[p] = sum / T.CreateTruncating(plane);
        }
    }

    /// <summary>dx[p,·] = dy[p] / plane size.</summary>
    public static void GlobalAverageBackward<T>(int planes, int plane, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int p = 0; p < planes; p++)
            dx.Slice(p * plane, plane).Fill(dy[p] / T.CreateTruncating(plane));
    }
}
