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
    public static void MaxPoolForward<T>(int planes, int h, int w, int kernel, int stride, int pad, ReadOnlySpan<T> x, Span<T> y, Span<int> argmax)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int oh = (h + 2 * pad - kernel) / stride + 1, ow = (w + 2 * pad - kernel) / stride + 1;
        for (int p = 0; p < planes; p++)
        {
            var src = x.Slice(p * h * w, h * w);
            var dst = y.Slice(p * oh * ow, oh * ow);
            var arg = argmax.Slice(p * oh * ow, oh * ow);
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    T best = T.NegativeInfinity;
                    int bestIndex = -1;
                    int y0 = oy * stride - pad, x0 = ox * stride - pad;
                    for (int ky = Math.Max(0, -y0); ky < kernel && y0 + ky < h; ky++)
                        for (int kx = Math.Max(0, -x0); kx < kernel && x0 + kx < w; kx++)
                        {
                            int idx = (y0 + ky) * w + x0 + kx;
                            T v = src[idx];
                            if (v > best || T.IsNaN(v) || bestIndex < 0) { best = v; bestIndex = idx; }
                        }
                    dst[oy * ow + ox] = best;
                    arg[oy * ow + ox] = bestIndex;
                }
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
