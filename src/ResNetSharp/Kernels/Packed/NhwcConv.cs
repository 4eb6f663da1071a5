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

    /// <summary>
    /// NCHW → NHWC for one batch, in blocks of pixels over the worker threads (a block's C·1024 destination floats
    /// stay in cache while each channel is scattered into it).
    /// </summary>
    public static void ToNhwc(ReadOnlySpan<float> src, Span<float> dst, int n, int c, int h, int w)
    {
        long total = (long)n * c * h * w;
        if (src.Length < total || dst.Length < total)
            throw new ArgumentException($"NCHW → NHWC of {n}x{c}x{h}x{w} needs {total} values: source has {src.Length}, destination {dst.Length}");
        int plane = h * w;
        const int Block = 1024;
        int blocks = (plane + Block - 1) / Block;
        fixed (float* s = src) fixed (float* d = dst)
        {
            nint sp = (nint)s, dp = (nint)d;
            WorkerPool.For(n * blocks, task =>
            {
                int b = task / blocks, p0 = task % blocks * Block, p1 = Math.Min(plane, p0 + Block);
                float* sb = (float*)sp + (long)b * c * plane, db = (float*)dp + (long)b * c * plane;
                for (int ch = 0; ch < c; ch++)
                {
                    float* sc = sb + (long)ch * plane, dc = db + ch;
                    for (int i = p0; i < p1; i++) dc[(long)i * c] = sc[i];
                }
            });
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
