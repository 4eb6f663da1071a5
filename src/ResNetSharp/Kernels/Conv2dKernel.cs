using System.Numerics;

namespace ResNetSharp.Kernels;

/// <summary>
/// Convolution as im2col + matrix product, per image: y_n (OC,P) = W (OC,K) · col_n (K,P), with K = IC·KH·KW
/// and P = OH·OW. Backward recomputes col_n instead of caching it (a ResNet-18 batch would need gigabytes).
/// Tested against <see cref="Reference.Conv2dReference"/>.
/// </summary>
public static class Conv2dKernel
{
    /// <summary>
    /// Route float through the packed path (default) or the plain one, for comparisons in tests. Per calling thread,
    /// so a test that switches it cannot change what other threads run.
    /// </summary>
    internal static bool UsePackedFloatPath
    {
        get => !_plainFloatPath;
        set => _plainFloatPath = !value;
    }

    [ThreadStatic] private static bool _plainFloatPath;

    /// <summary>Scratch elements <see cref="Forward{T}"/> and <see cref="Backward{T}"/> need (none for float, which packs into its own).</summary>
    public static int ScratchSize<T>(in ConvGeometry g) => typeof(T) == typeof(float) && UsePackedFloatPath ? 0 :
        (g.IsPointwise ? 0 : g.PatchSize * g.OutPlane) + g.PatchSize * g.OutPlane + g.WeightSize;

    /// <summary>y = conv(x, w) + bias. x (N,IC,H,W), w (OC,IC,KH,KW), bias (OC) or empty, y (N,OC,OH,OW).</summary>
    public static unsafe void Forward<T>(in ConvGeometry g, int batch, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias,
        Span<T> y, Span<T> scratch) where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float) && UsePackedFloatPath)
        {
            // float: the packed micro-kernel path, images spread over the worker threads.
            fixed (T* xp = x) fixed (T* wp = w) fixed (T* bp = bias) fixed (T* yp = y)
                Packed.NchwConv.Forward(g, batch, (float*)xp, (float*)wp, (float*)bp, (float*)yp);
            return;
        }
        int k = g.PatchSize, p = g.OutPlane;
        for (int n = 0; n < batch; n++)
        {
            var xn = x.Slice(n * g.InImage, g.InImage);
            var yn = y.Slice(n * g.OutImage, g.OutImage);
            ReadOnlySpan<T> col = xn;
            if (!g.IsPointwise)
            {
                var colBuf = scratch[..(k * p)];
                Im2Col(g, xn, colBuf);
                col = colBuf;
            }
            Gemm.NN(g.OutChannels, p, k, w, k, col, p, yn, p, accumulate: false);
            if (!bias.IsEmpty)
                for (int oc = 0; oc < g.OutChannels; oc++)
                {
                    var row = yn.Slice(oc * p, p);
                    T b = bias[oc];
                    for (int i = 0; i < row.Length; i++) row[i] += b;
                }
        }
    }

    /// <summary>
    /// Gradients of Σ y·dy: dx (overwritten, may be empty to skip), dw and dbias (accumulated, dbias may be empty).
    /// dw += Σn dy_n · col_nᵀ; dcol_n = Wᵀ · dy_n, scattered back to dx by col2im.
    /// </summary>
    public static unsafe void Backward<T>(in ConvGeometry g, int batch, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy,
        Span<T> dx, Span<T> dw, Span<T> dbias, Span<T> scratch) where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float) && UsePackedFloatPath)
        {
            fixed (T* xp = x) fixed (T* wp = w) fixed (T* dyp = dy) fixed (T* dxp = dx) fixed (T* dwp = dw) fixed (T* dbp = dbias)
                Packed.NchwConv.Backward(g, batch, (float*)xp, (float*)wp, (float*)dyp, (float*)dxp, (float*)dwp, (float*)dbp);
            return;
        }
        int k = g.PatchSize, p = g.OutPlane;
        int colSize = g.IsPointwise ? 0 : k * p;
        var colBuf = scratch[..colSize];
        var dcol = scratch.Slice(colSize, k * p);
        var wT = scratch.Slice(colSize + k * p, g.WeightSize);
        for (int n = 0; n < batch; n++)
        {
            var xn = x.Slice(n * g.InImage, g.InImage);
            var dyn = dy.Slice(n * g.OutImage, g.OutImage);
            ReadOnlySpan<T> col = xn;
            if (!g.IsPointwise) { Im2Col(g, xn, colBuf); col = colBuf; }
            Gemm.NT(g.OutChannels, k, p, dyn, p, col, p, dw, k, accumulate: true);
            if (!dbias.IsEmpty)
                for (int oc = 0; oc < g.OutChannels; oc++)
                {
                    T s = T.Zero;
                    foreach (var v in dyn.Slice(oc * p, p)) s += v;
                    dbias[oc] += s;
                }
            if (dx.IsEmpty) continue;
            var dxn = dx.Slice(n * g.InImage, g.InImage);
            if (g.IsPointwise)
                Gemm.TN(k, p, g.OutChannels, w, k, dyn, p, dxn, p, accumulate: false, wT);
            else
            {
                Gemm.TN(k, p, g.OutChannels, w, k, dyn, p, dcol, p, accumulate: false, wT);
                Col2Im(g, dcol, dxn);
            }
        }
    }

    /// <summary>col[(ic,kh,kw), (oh,ow)] = x[ic, oh·s − pad + kh, ow·s − pad + kw], zero outside the image.</summary>
    public static void Im2Col<T>(in ConvGeometry g, ReadOnlySpan<T> x, Span<T> col) where T : unmanaged, INumber<T>
    {
        int oh = g.OutHeight, ow = g.OutWidth, s = g.Stride, pad = g.Padding;
        int row = 0;
        for (int ic = 0; ic < g.InChannels; ic++)
        {
            var plane = x.Slice(ic * g.InPlane, g.InPlane);
            for (int kh = 0; kh < g.KernelH; kh++)
                for (int kw = 0; kw < g.KernelW; kw++, row++)
                {
                    var dst = col.Slice(row * oh * ow, oh * ow);
                    for (int y = 0; y < oh; y++)
                    {
                        int iy = y * s - pad + kh;
                        var dstRow = dst.Slice(y * ow, ow);
                        if ((uint)iy >= (uint)g.Height) { dstRow.Clear(); continue; }
                        var src = plane.Slice(iy * g.Width, g.Width);
                        int ix0 = kw - pad;
                        if (s == 1 && ix0 >= 0 && ix0 + ow <= g.Width)
                        {
                            src.Slice(ix0, ow).CopyTo(dstRow);
                            continue;
                        }
                        for (int xo = 0; xo < ow; xo++)
                        {
                            int ix = xo * s + ix0;
                            dstRow[xo] = (uint)ix < (uint)g.Width ? src[ix] : T.Zero;
                        }
                    }
                }
        }
    }

    /// <summary>The adjoint of <see cref="Im2Col{T}"/>: dx is overwritten with the sum of every patch entry that read it.</summary>
    public static void Col2Im<T>(in ConvGeometry g, ReadOnlySpan<T> col, Span<T> dx) where T : unmanaged, INumber<T>
    {
        dx.Clear();
        int oh = g.OutHeight, ow = g.OutWidth, s = g.Stride, pad = g.Padding;
        int row = 0;
        for (int ic = 0; ic < g.InChannels; ic++)
        {
            var plane = dx.Slice(ic * g.InPlane, g.InPlane);
            for (int kh = 0; kh < g.KernelH; kh++)
                for (int kw = 0; kw < g.KernelW; kw++, row++)
                {
                    var src = col.Slice(row * oh * ow, oh * ow);
                    // Output columns whose input column lies inside the image, computed once per kernel tap.
                    int from = Math.Max(0, (pad - kw + s - 1) / s), to = Math.Min(ow, (g.Width - 1 + pad - kw) / s + 1);
                    if (from >= to) continue;
                    for (int y = 0; y < oh; y++)
                    {
                        int iy = y * s - pad + kh;
                        if ((uint)iy >= (uint)g.Height) continue;
                        var dstRow = plane.Slice(iy * g.Width, g.Width);
                        var srcRow = src.Slice(y * ow, ow);
                        int ix0 = kw - pad;
                        if (s == 1)
                        {
                            var d = dstRow.Slice(from + ix0, to - from);
                            var v = srcRow.Slice(from, to - from);
                            for (int i = 0; i < d.Length; i++) d[i] += v[i];
                        }
                        else
                            for (int xo = from; xo < to; xo++) dstRow[xo * s + ix0] += srcRow[xo];
                    }
                }
        }
    }
}
