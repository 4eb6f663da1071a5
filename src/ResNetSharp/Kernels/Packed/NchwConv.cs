using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// The training-path (NCHW) convolution in float on the packed micro-kernel. Per image, with K = IC·KH·KW, P = OH·OW:
/// forward y_n (OC,P) = W (OC,K) · col_n (K,P); backward dW += dy_n · col_nᵀ and dcol_n = Wᵀ · dy_n, then col2im.
/// The right-hand side of each product is packed into NR-wide panels (the im2col is written straight into them).
/// Images are spread over the worker threads, each with its own scratch and its own dW partial sum.
/// </summary>
public static unsafe class NchwConv
{
    [ThreadStatic] private static AlignedBuffer? _scratchA, _scratchB;
    // Per calling thread, so that models trained on different threads never share them.
    [ThreadStatic] private static AlignedBuffer[]? _weightGradParts;
    [ThreadStatic] private static AlignedBuffer? _transposedWeights;

    public static void Forward(in ConvGeometry g, int batch, float* x, float* w, float* bias, float* y)
    {
        var geometry = g;
        int k = g.PatchSize, p = g.OutPlane, nr = PackedGemm.NR;
        int panels = (p + nr - 1) / nr;
        int[] rows = RowOffsets(g.OutChannels, k);
        nint xp = (nint)x, wp = (nint)w, bp = (nint)bias, yp = (nint)y;
        WorkerPool.For(batch, n =>
        {
            var packed = Scratch(ref _scratchA, panels * k * nr);
            PackIm2Col(geometry, (float*)xp + (long)n * geometry.InImage, packed.Pointer);
            float* yn = (float*)yp + (long)n * geometry.OutImage;
            PackedGemm.Run(new PanelMatrix(packed.Pointer, null, p, 1, k), (float*)wp, rows, geometry.OutChannels, yn, p, null, 0, relu: false, accumulate: false);
            if (bp != 0)
                for (int oc = 0; oc < geometry.OutChannels; oc++)
                {
                    float b = ((float*)bp)[oc];
                    var row = new Span<float>(yn + (long)oc * p, p);
                    for (int i = 0; i < row.Length; i++) row[i] += b;
                }
        });
    }

    /// <summary>dx overwritten (skipped when null); dw and dbias accumulated (dbias may be null).</summary>
    public static void Backward(in ConvGeometry g, int batch, float* x, float* w, float* dy, float* dx, float* dw, float* dbias)
    {
        var geometry = g;
        int k = g.PatchSize, p = g.OutPlane, oc = g.OutChannels, nr = PackedGemm.NR;
        int groups = Math.Max(1, Math.Min(Engine.Threads, batch));
        EnsureWeightGradParts(groups, oc * k);
        var parts = _weightGradParts!.Select(b => (nint)b.Pointer).ToArray();
        float* wT = null;
        if (dx != null)
        {
            // Wᵀ (K,OC), the left operand of dcol = Wᵀ·dy: rows read with broadcasts must be contiguous.
            var t = _transposedWeights = _transposedWeights is { } b && b.Length >= oc * k ? b : new AlignedBuffer(oc * k);
            for (int o = 0; o < oc; o++)
                for (int i = 0; i < k; i++) t.Pointer[(long)i * oc + o] = w[(long)o * k + i];
            wT = t.Pointer;
        }
        int[] dyRows = RowOffsets(oc, p);
        int[] wTRows = RowOffsets(k, oc);
        nint xp = (nint)x, dyp = (nint)dy, dxp = (nint)dx, wTp = (nint)wT;
        int kPanels = (k + nr - 1) / nr, pPanels = (p + nr - 1) / nr;
        WorkerPool.For(groups, group =>
        {
            float* dwPart = (float*)parts[group];
            new Span<float>(dwPart, oc * k).Clear();
            var a = Scratch(ref _scratchA, Math.Max(kPanels * p * nr, pPanels * oc * nr));
            var b = Scratch(ref _scratchB, k * p);  // the im2col rows, then dcol
            for (int n = group * batch / groups; n < (group + 1) * batch / groups; n++)
            {
                float* xn = (float*)xp + (long)n * geometry.InImage;
                float* dyn = (float*)dyp + (long)n * geometry.OutImage;
                // dW (OC,K) += dy_n (OC,P) · col_nᵀ (P,K): the packed side is colᵀ in panels of NR rows of col.
                PackIm2ColTransposed(geometry, xn, a.Pointer, b.Pointer);
                PackedGemm.Run(new PanelMatrix(a.Pointer, null, k, 1, p), dyn, dyRows, oc, dwPart, k, null, 0, relu: false, accumulate: true);
                if (dxp == 0) continue;
                // dcol (K,P) = Wᵀ (K,OC) · dy_n (OC,P): the packed side is dy_n in panels of NR pixels.
                PackColumns(dyn, oc, p, a.Pointer);
                float* dxn = (float*)dxp + (long)n * geometry.InImage;
                float* dcol = geometry.IsPointwise ? dxn : b.Pointer;
                PackedGemm.Run(new PanelMatrix(a.Pointer, null, p, 1, oc), (float*)wTp, wTRows, k, dcol, p, null, 0, relu: false, accumulate: false);
                if (!geometry.IsPointwise) Conv2dKernel.Col2Im<float>(geometry, new ReadOnlySpan<float>(dcol, k * p), new Span<float>(dxn, geometry.InImage));
            }
        });
        for (int gi = 0; gi < groups; gi++)
        {
            float* part = (float*)parts[gi];
            for (int i = 0; i < oc * k; i++) dw[i] += part[i];
        }
        if (dbias != null)
            for (int n = 0; n < batch; n++)
                for (int o = 0; o < oc; o++)
                {
                    float s = 0;
                    float* row = dy + (long)n * g.OutImage + (long)o * p;
                    for (int i = 0; i < p; i++) s += row[i];
                    dbias[o] += s;
                }
    }

    /// <summary>dst[panel][(ic,kh,kw)][lane] = x[ic, oy·s − pad + kh, ox·s − pad + kw] for pixel panel·NR + lane (0 past the end).</summary>
    internal static void PackIm2Col(in ConvGeometry g, float* x, float* dst)
    {
        int nr = PackedGemm.NR, ow = g.OutWidth, p = g.OutPlane, k = g.PatchSize;
        int panels = (p + nr - 1) / nr;
        for (int panel = 0; panel < panels; panel++)
        {
            float* d = dst + (long)panel * k * nr;
            int p0 = panel * nr, count = Math.Min(nr, p - p0);
            int row = 0;
            for (int ic = 0; ic < g.InChannels; ic++)
            {
                float* plane = x + (long)ic * g.InPlane;
                for (int kh = 0; kh < g.KernelH; kh++)
                    for (int kw = 0; kw < g.KernelW; kw++, row++)
                        GatherRow(g, plane, kh, kw, p0, count, d + (long)row * nr, 1);
            }
            if (count < nr)
                for (int r = 0; r < k; r++) new Span<float>(d + (long)r * nr + count, nr - count).Clear();
        }
    }

    /// <summary>
    /// dst[panel][pixel][lane] = col[panel·NR + lane, pixel]: colᵀ in panels of NR patch rows (0 past K). The im2col
    /// rows are gathered contiguously into <paramref name="col"/> (K·P scratch) first, then transposed in 16-pixel
    /// blocks whose destination (16·NR floats) stays in L1; writing the panel directly scatters one float per line.
    /// </summary>
    internal static void PackIm2ColTransposed(in ConvGeometry g, float* x, float* dst, float* col)
    {
        int nr = PackedGemm.NR, p = g.OutPlane, k = g.PatchSize, khw = g.KernelH * g.KernelW;
        for (int kk = 0; kk < k; kk++)
        {
            int ic = kk / khw, rem = kk - ic * khw, kh = rem / g.KernelW, kw = rem - kh * g.KernelW;
            GatherRow(g, x + (long)ic * g.InPlane, kh, kw, 0, p, col + (long)kk * p, 1);
        }
        int panels = (k + nr - 1) / nr;
        const int Block = 16;
        for (int panel = 0; panel < panels; panel++)
        {
            float* d = dst + (long)panel * p * nr;
            int k0 = panel * nr, count = Math.Min(nr, k - k0);
            for (int p0 = 0; p0 < p; p0 += Block)
            {
                int pn = Math.Min(Block, p - p0);
                for (int lane = 0; lane < count; lane++)
                {
                    float* src = col + (long)(k0 + lane) * p + p0;
                    for (int q = 0; q < pn; q++) d[(long)(p0 + q) * nr + lane] = src[q];
                }
                for (int lane = count; lane < nr; lane++)
                    for (int q = 0; q < pn; q++) d[(long)(p0 + q) * nr + lane] = 0f;
            }
        }
    }

    /// <summary>
    /// out[i·stride] = plane[oy·s − pad + kh, ox·s − pad + kw] for the `count` output pixels from p0 on (0 in the
    /// padding), walking (oy, ox) incrementally instead of dividing per pixel.
    /// </summary>
    private static void GatherRow(in ConvGeometry g, float* plane, int kh, int kw, int p0, int count, float* output, int stride)
    {
        int ow = g.OutWidth, s = g.Stride, pad = g.Padding, h = g.Height, w = g.Width;
        int oy = p0 / ow, ox = p0 - oy * ow;
        // Output columns whose input column ox·s − pad + kw lies inside the image: [validFrom, validTo).
        int validFrom = Math.Max(0, (pad - kw + s - 1) / s), validTo = Math.Min(ow, (w - 1 + pad - kw) / s + 1);
        int i = 0;
        while (i < count)
        {
            int run = Math.Min(ow - ox, count - i);  // pixels left on this output row
            int iy = oy * s - pad + kh;
            float* o = output + (long)i * stride;
            int from = Math.Clamp(validFrom - ox, 0, run), to = Math.Clamp(validTo - ox, from, run);
            if ((uint)iy >= (uint)h) { from = 0; to = 0; }
            for (int j = 0; j < from; j++) o[(long)j * stride] = 0f;
            float* src = plane + (long)iy * w + (ox + from) * s - pad + kw;
            if (stride == 1 && s == 1)
                Buffer.MemoryCopy(src, o + from, (to - from) * sizeof(float), (to - from) * sizeof(float));
            else
                for (int j = from; j < to; j++, src += s) o[(long)j * stride] = *src;
            for (int j = to; j < run; j++) o[(long)j * stride] = 0f;
            i += run; ox = 0; oy++;
        }
    }

    /// <summary>dst[panel][r][lane] = src[r, panel·NR + lane] for a row-major (rows, cols) matrix, 0 past the last column.</summary>
    internal static void PackColumns(float* src, int rows, int cols, float* dst)
    {
        int nr = PackedGemm.NR, panels = (cols + nr - 1) / nr;
        for (int panel = 0; panel < panels; panel++)
        {
            int c0 = panel * nr, count = Math.Min(nr, cols - c0);
            for (int r = 0; r < rows; r++)
            {
                float* d = dst + ((long)panel * rows + r) * nr;
                new ReadOnlySpan<float>(src + (long)r * cols + c0, count).CopyTo(new Span<float>(d, count));
                if (count < nr) new Span<float>(d + count, nr - count).Clear();
            }
        }
    }

    private static AlignedBuffer Scratch(ref AlignedBuffer? buffer, int length)
    {
        if (buffer is null || buffer.Length < length) buffer = new AlignedBuffer(length);
        return buffer;
    }

    private static void EnsureWeightGradParts(int groups, int length)
    {
        var parts = _weightGradParts ?? [];
        if (parts.Length >= groups && parts.Take(groups).All(b => b.Length >= length)) return;
        var grown = new AlignedBuffer[Math.Max(groups, parts.Length)];
        for (int i = 0; i < grown.Length; i++)
            grown[i] = i < parts.Length && parts[i].Length >= length ? parts[i] : new AlignedBuffer(length);
        _weightGradParts = grown;
    }

    // offsets[r] = r·stride: the rows of a dense row-major left operand. Cached per (rows, stride).
    private static readonly Dictionary<(int, int), int[]> RowTables = [];
    private static int[] RowOffsets(int rows, int stride)
    {
        lock (RowTables)
        {
            if (!RowTables.TryGetValue((rows, stride), out var t))
                RowTables[(rows, stride)] = t = Enumerable.Range(0, rows).Select(r => r * stride).ToArray();
            return t;
        }
    }
}
