using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    /// <summary>
    /// The adjoint of <see cref="Im2Col{T}"/>: dx is overwritten with the sum of every patch entry that read it. Row r
    /// of col starts at r·rowStride (default OH·OW: rows packed one after another).
    /// </summary>
    public static void Col2Im<T>(in ConvGeometry g, ReadOnlySpan<T> col, Span<T> dx, int rowStride = 0) where T : unmanaged, INumber<T>
    {
        if (rowStride == 0) rowStride = g.OutHeight * g.OutWidth;
        if (typeof(T) == typeof(float) && g.Stride == 2 && Avx512F.IsSupported && UseGatherCol2Im && IsGatherable(g))
        {
            Col2Im3x3Stride2(g, MemoryMarshal.Cast<T, float>(col), rowStride, MemoryMarshal.Cast<T, float>(dx));
            return;
        }
        if (typeof(T) == typeof(float) && g.Stride == 2 && Avx512F.IsSupported)
        {
            Col2ImStride2(g, MemoryMarshal.Cast<T, float>(col), rowStride, MemoryMarshal.Cast<T, float>(dx));
            return;
        }
        dx.Clear();
        int oh = g.OutHeight, ow = g.OutWidth, s = g.Stride, pad = g.Padding;
        int row = 0;
        for (int ic = 0; ic < g.InChannels; ic++)
        {
            var plane = dx.Slice(ic * g.InPlane, g.InPlane);
            for (int kh = 0; kh < g.KernelH; kh++)
                for (int kw = 0; kw < g.KernelW; kw++, row++)
                {
                    var src = col.Slice(row * rowStride, oh * ow);
                    // Output columns whose input column lies inside the image, computed once per kernel tap.
                    // `to` is ⌊(W − 1 + pad − kw)/s⌋ + 1 written so that a negative numerator (a tap right of a narrow
                    // image's last column) gives at most 0: (−1)/2 + 1 rounded up to 1 and wrote past the row.
                    int from = Math.Max(0, (pad - kw + s - 1) / s), to = Math.Min(ow, (g.Width - 1 + pad - kw + s) / s);
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

    /// <summary>
    /// Col2Im for stride 2 in float on AVX-512, with pointers: the generic loop above spent more on slicing its short
    /// rows (a 28-wide row per tap and output row at resnet18's 56→28 layer) than on the adds, and scattered every
    /// other element one at a time: it took 37% of that layer's input-gradient time (thread-summed, batch 16).
    /// </summary>
    private static unsafe void Col2ImStride2(in ConvGeometry g, ReadOnlySpan<float> col, int rowStride, Span<float> dx)
    {
        dx.Clear();
        int oh = g.OutHeight, ow = g.OutWidth, pad = g.Padding, h = g.Height, w = g.Width;
        if ((long)(g.InChannels * g.KernelH * g.KernelW - 1) * rowStride + oh * ow > col.Length || (long)g.InChannels * g.InPlane > dx.Length)
            throw new ArgumentException($"col2im of {g.InChannels}x{h}x{w}: col has {col.Length} values, dx {dx.Length}");
        fixed (float* c = col) fixed (float* d = dx)
        {
            int row = 0;
            for (int ic = 0; ic < g.InChannels; ic++)
            {
                float* plane = d + (long)ic * g.InPlane;
                for (int kh = 0; kh < g.KernelH; kh++)
                    for (int kw = 0; kw < g.KernelW; kw++, row++)
                    {
                        float* src = c + (long)row * rowStride;
                        int ix0 = kw - pad;
                        int from = Math.Max(0, (pad - kw + 1) / 2), to = Math.Min(ow, (w - 1 + pad - kw + 2) / 2);  // floor, as above
                        if (from >= to) continue;
                        for (int y = 0; y < oh; y++)
                        {
                            int iy = y * 2 - pad + kh;
                            if ((uint)iy >= (uint)h) continue;
                            // dst[2i] += src[i] over the row's valid columns, 16 at a time while the 32 dst lanes fit
                            // in the row: src spread over 32 lanes with zeros between.
                            float* sr = src + y * ow + from, dr = plane + (long)iy * w + 2 * from + ix0;
                            int n = to - from, room = w - (2 * from + ix0), i = 0;
                            for (; i + 16 <= n && 2 * i + 32 <= room; i += 16)
                            {
                                var v = Vector512.Load(sr + i);
                                float* at = dr + 2 * i;
                                (Vector512.Load(at) + Avx512F.PermuteVar16x32x2(v, SpreadLow, Vector512<float>.Zero)).Store(at);
                                (Vector512.Load(at + 16) + Avx512F.PermuteVar16x32x2(v, SpreadHigh, Vector512<float>.Zero)).Store(at + 16);
                            }
                            for (; i < n; i++) dr[2 * i] += sr[i];
                        }
                    }
            }
        }
    }

    /// <summary>Whether stride-2 3x3 padding-1 col2im gathers each dx row (on by default; off only to test and measure it).</summary>
    internal static bool UseGatherCol2Im = true;

    // The ResNet downsampling convolution (its output is ⌈H/2⌉ x ⌈W/2⌉, which Col2Im3x3Stride2 relies on).
    private static bool IsGatherable(in ConvGeometry g) => g.KernelH == 3 && g.KernelW == 3 && g.Stride == 2 && g.Padding == 1;

    /// <summary>
    /// Col2Im of the 3x3 stride-2 padding-1 convolution (ResNet's downsampling 3x3) as a gather: each dx row is the sum
    /// of the one or two output rows that reach it (kh = 1 for even rows; kh = 0 and 2 for odd ones), its even columns
    /// from tap kw = 1 and its odd columns from kw = 2 and kw = 0 one output column on, interleaved in registers and
    /// stored once. The scatter form (<see cref="Col2ImStride2"/>) read and wrote every dx row three times per input
    /// channel, and at resnet20's widths (rows of 14 or 7 outputs, under one vector) it ran scalar: 4.1 of the 7.2
    /// thread-ms of a 16→32 channel layer's dx (28x28, batch 128).
    /// </summary>
    private static unsafe void Col2Im3x3Stride2(in ConvGeometry g, ReadOnlySpan<float> col, int rowStride, Span<float> dx)
    {
        int h = g.Height, w = g.Width, oh = g.OutHeight, ow = g.OutWidth, plane = oh * ow;
        if ((long)(g.InChannels * 9 - 1) * rowStride + plane > col.Length || (long)g.InChannels * g.InPlane > dx.Length)
            throw new ArgumentException($"col2im of {g.InChannels}x{h}x{w}: col has {col.Length} values, dx {dx.Length}");
        var lanes = Vector512<int>.Indices;
        fixed (float* c = col) fixed (float* d = dx)
            for (int ic = 0; ic < g.InChannels; ic++)
            {
                float* taps = c + (long)ic * 9 * rowStride;
                for (int iy = 0; iy < h; iy++)
                {
                    // The output rows that reach input row iy = 2·oy − 1 + kh: (kh, oy) = (1, iy/2), or (2, (iy−1)/2)
                    // and, inside the output, (0, (iy+1)/2).
                    bool odd = (iy & 1) != 0;
                    float* first = taps + (odd ? 6L * rowStride : 3L * rowStride) + (long)(iy >> 1) * ow;
                    float* second = odd && (iy + 1) / 2 < oh ? taps + (long)((iy + 1) / 2) * ow : null;
                    float* dst = d + (long)ic * g.InPlane + (long)iy * w;
                    for (int x0 = 0; x0 < ow; x0 += 16)
                    {
                        // Lanes of output columns x0 + j inside the row, and of x0 + j + 1 (the kw = 0 tap's).
                        var inside = Vector512.LessThan(lanes, Vector512.Create(ow - x0)).AsSingle();
                        var next = Vector512.LessThan(lanes, Vector512.Create(ow - x0 - 1)).AsSingle();
                        // Even columns 2·ox from kw = 1; odd 2·ox + 1 from kw = 0 at ox + 1 and kw = 2 at ox. Added in
                        // the scatter loop's order (taps ascending, kh = 0 before kh = 2), so the sums round the same.
                        var zero = Vector512<float>.Zero;
                        Vector512<float> even, oddColumns;
                        if (second != null)
                        {
                            even = Avx512F.MaskLoad(second + rowStride + x0, inside, zero) + Avx512F.MaskLoad(first + rowStride + x0, inside, zero);
                            oddColumns = Avx512F.MaskLoad(second + x0 + 1, next, zero) + Avx512F.MaskLoad(second + 2L * rowStride + x0, inside, zero);
                            oddColumns += Avx512F.MaskLoad(first + x0 + 1, next, zero);
                        }
                        else
                        {
                            even = Avx512F.MaskLoad(first + rowStride + x0, inside, zero);
                            oddColumns = Avx512F.MaskLoad(first + x0 + 1, next, zero);
                        }
                        oddColumns += Avx512F.MaskLoad(first + 2L * rowStride + x0, inside, zero);
                        StoreFirst(dst + 2 * x0, Avx512F.PermuteVar16x32x2(even, Packed.Deinterleave.PairsLow, oddColumns), w - 2 * x0);
                        StoreFirst(dst + 2 * x0 + 16, Avx512F.PermuteVar16x32x2(even, Packed.Deinterleave.PairsHigh, oddColumns), w - 2 * x0 - 16);
                    }
                }
            }
    }

    // The first `count` lanes of v at p (all 16 when count ≥ 16, none when count ≤ 0).
    private static unsafe void StoreFirst(float* p, Vector512<float> v, int count)
    {
        if (count >= 16) v.Store(p);
        else if (count > 0) Avx512F.MaskStore(p, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle(), v);
    }

    private static readonly Vector512<int> SpreadLow = Vector512.Create(0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
    private static readonly Vector512<int> SpreadHigh = Vector512.Create(8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
}
