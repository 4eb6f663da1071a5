using System.Numerics;

namespace ResNetSharp.Kernels.Reference;

/// <summary>Direct seven-loop convolution and its gradients, straight from the definition.</summary>
public static class Conv2dReference
{
    public static void Forward<T>(in ConvGeometry g, int batch, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y)
        where T : INumber<T>
    {
        int oh = g.OutHeight, ow = g.OutWidth;
        for (int n = 0; n < batch; n++)
            for (int oc = 0; oc < g.OutChannels; oc++)
                for (int yo = 0; yo < oh; yo++)
                    for (int xo = 0; xo < ow; xo++)
                    {
                        T sum = bias.IsEmpty ? T.Zero : bias[oc];
                        for (int ic = 0; ic < g.InChannels; ic++)
                            for (int kh = 0; kh < g.KernelH; kh++)
                                for (int kw = 0; kw < g.KernelW; kw++)
                                {
                                    int iy = yo * g.Stride - g.Padding + kh, ix = xo * g.Stride - g.Padding + kw;
                                    if (iy < 0 || iy >= g.Height || ix < 0 || ix >= g.Width) continue;
                                    sum += x[((n * g.InChannels + ic) * g.Height + iy) * g.Width + ix]
                                         * w[((oc * g.InChannels + ic) * g.KernelH + kh) * g.KernelW + kw];
                                }
                        y[((n * g.OutChannels + oc) * oh + yo) * ow + xo] = sum;
                    }
    }

    /// <summary>dx overwritten; dw and dbias accumulated (either may be empty).</summary>
    public static void Backward<T>(in ConvGeometry g, int batch, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy,
        Span<T> dx, Span<T> dw, Span<T> dbias) where T : INumber<T>
    {
        dx.Clear();
        int oh = g.OutHeight, ow = g.OutWidth;
        for (int n = 0; n < batch; n++)
            for (int oc = 0; oc < g.OutChannels; oc++)
                for (int yo = 0; yo < oh; yo++)
                    for (int xo = 0; xo < ow; xo++)
                    {
                        T d = dy[((n * g.OutChannels + oc) * oh + yo) * ow + xo];
                        if (!dbias.IsEmpty) dbias[oc] += d;
                        for (int ic = 0; ic < g.InChannels; ic++)
                            for (int kh = 0; kh < g.KernelH; kh++)
                                for (int kw = 0; kw < g.KernelW; kw++)
                                {
                                    int iy = yo * g.Stride - g.Padding + kh, ix = xo * g.Stride - g.Padding + kw;
                                    if (iy < 0 || iy >= g.Height || ix < 0 || ix >= g.Width) continue;
                                    int xi = ((n * g.InChannels + ic) * g.Height + iy) * g.Width + ix;
                                    int wi = ((oc * g.InChannels + ic) * g.KernelH + kh) * g.KernelW + kw;
                                    if (!dx.IsEmpty) dx[xi] += d * w[wi];
                                    if (!dw.IsEmpty) dw[wi] += d * x[xi];
                                }
                    }
    }
}
