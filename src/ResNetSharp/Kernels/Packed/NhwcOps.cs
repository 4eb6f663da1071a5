using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>The non-convolution ops of the NHWC inference path, vectorised along channels.</summary>
public static unsafe class NhwcOps
{
    /// <summary>Max pooling, padding as −∞: y (N,OH,OW,C) from x (N,H,W,C).</summary>
    public static void MaxPool(float* x, float* y, int batch, int h, int w, int c, int kernel, int stride, int pad)
    {
        int oh = (h + 2 * pad - kernel) / stride + 1, ow = (w + 2 * pad - kernel) / stride + 1;
        nint xp = (nint)x, yp = (nint)y;
        WorkerPool.For(batch * oh, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (row) =>
        {
            int n = row / oh, oy = row % oh;
            float* xs = (float*)xp, ys = (float*)yp;
            int y0 = oy * stride - pad, ky0 = Math.Max(0, -y0), ky1 = Math.Min(kernel, h - y0);
            for (int ox = 0; ox < ow; ox++)
            {
                float* dst = ys + (((long)n * oh + oy) * ow + ox) * c;
                int x0 = ox * stride - pad;
                int kx0 = Math.Max(0, -x0), kx1 = Math.Min(kernel, w - x0);
                // The window's first pixel inside the image; its rows are w·c floats apart, its pixels c.
                float* window = xs + (((long)n * h + y0 + ky0) * w + x0 + kx0) * c;
                WindowMax(window, (long)w * c, ky1 - ky0, kx1 - kx0, c, dst);
            }
        });
    }

    /// <summary>
    /// dst[ch] = the max over a window of rows × cols pixels of c channels from <paramref name="window"/> (rows
    /// rowStride floats apart), from −∞, row by row and pixel by pixel: the order every max pool here takes, so that
    /// a fused one gives the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void WindowMax(float* window, long rowStride, int rows, int cols, int c, float* dst)
    {
        int ch = 0;
        for (; ch + 16 <= c; ch += 16)
        {
            var m = Vector512.Create(float.NegativeInfinity);
            for (int ky = 0; ky < rows; ky++)
            {
                float* r = window + ky * rowStride + ch;
                for (int kx = 0; kx < cols; kx++) m = Vector512.Max(m, Vector512.Load(r + (long)kx * c));
            }
            m.Store(dst + ch);
        }
        for (; ch < c; ch++)
        {
            float m = float.NegativeInfinity;
            for (int ky = 0; ky < rows; ky++)
                for (int kx = 0; kx < cols; kx++) m = Math.Max(m, window[ky * rowStride + (long)kx * c + ch]);
            dst[ch] = m;
        }
    }

    /// <summary>y (N, H+2p, W+2p, C) = x (N,H,W,C) with a border of p zero pixels.</summary>
    public static void Pad(float* x, float* y, int batch, int h, int w, int c, int pad)
    {
        int hp = h + 2 * pad, wp = w + 2 * pad;
        new Span<float>(y, batch * hp * wp * c).Clear();
        for (int n = 0; n < batch; n++)
            for (int iy = 0; iy < h; iy++)
                Buffer.MemoryCopy(x + ((long)n * h + iy) * w * c, y + (((long)n * hp + iy + pad) * wp + pad) * c, (long)w * c * sizeof(float), (long)w * c * sizeof(float));
    }

    /// <summary>Global average pooling: y (N,C) = mean over the H·W pixels of x (N,H,W,C).</summary>
    public static void GlobalAverage(float* x, float* y, int batch, int pixels, int c)
    {
        float inv = 1f / pixels;
        for (int n = 0; n < batch; n++)
        {
            float* dst = y + (long)n * c;
            new Span<float>(dst, c).Clear();
            for (int p = 0; p < pixels; p++)
            {
                float* src = x + ((long)n * pixels + p) * c;
                int ch = 0;
                for (; ch + 16 <= c; ch += 16) (Vector512.Load(dst + ch) + Vector512.Load(src + ch)).Store(dst + ch);
                for (; ch < c; ch++) dst[ch] += src[ch];
            }
            for (int ch = 0; ch < c; ch++) dst[ch] *= inv;
        }
    }

    /// <summary>The CIFAR option-A shortcut in NHWC: y[n,oy,ox, pad + c] = x[n, oy·s, ox·s, c], other channels 0.</summary>
    public static void ZeroPadShortcut(float* x, float* y, int batch, int h, int w, int inC, int outC, int stride)
    {
        int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, before = (outC - inC) / 2;
        for (int n = 0; n < batch; n++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    float* dst = y + (((long)n * oh + oy) * ow + ox) * outC;
                    new Span<float>(dst, outC).Clear();
                    new ReadOnlySpan<float>(x + (((long)n * h + oy * stride) * w + ox * stride) * inC, inC).CopyTo(new Span<float>(dst + before, inC));
                }
    }
}
