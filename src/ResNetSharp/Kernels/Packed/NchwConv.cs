using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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

    /// <summary>
    /// Whether stride-1 3x3 convolutions with at least <see cref="MinWinogradChannels"/> input and output channels run
    /// their forward pass and dx as Winograd (<see cref="NchwWinograd"/>: F(4x4,3x3), or F(2x2,3x3) on images at most
    /// 8 wide; AVX-512 only), except those <see cref="NarrowConv3x3"/> takes (16 channels or fewer on both sides),
    /// which run direct either way. Results differ from the direct sum by rounding.
    /// </summary>
    public static bool UseWinograd { get; set; } = true;

    /// <summary>
    /// Below this, a chunk's products have too short a reduction to pay for the transforms. Measured on resnet20's
    /// 16-channel layers (28x28, batch 128), against the matrix-product direct path of the time: F(2x2) took 5.3–5.7 ms
    /// against 4.8–5.1 direct, F(4x4) 2.8–3.7 against 3.3–4.8, and the whole training step 4% less with them on.
    /// Those layers now take <see cref="NarrowConv3x3"/>, faster than either.
    /// </summary>
    public const int MinWinogradChannels = 16;

    /// <summary>
    /// Whether the convolutions that take Winograd (<see cref="TakesWinograd"/>) also compute their weight gradient by
    /// it (<see cref="NchwWinograd.WeightGradient"/>) instead of the direct tap kernel. Internal: a switch to measure
    /// and test the two against each other.
    /// </summary>
    internal static bool WinogradWeightGradient = true;

    /// <summary>
    /// Below this, the direct tap kernel's weight gradient is faster: for resnet20's 16-channel layers (28x28, batch
    /// 128) the transforms cost more than the multiplies they save (Winograd took 1.28–1.36x the direct kernel's time).
    /// </summary>
    internal const int MinWinogradGradientChannels = 32;

    internal static bool TakesWinograd(in ConvGeometry g) =>
        UseWinograd && NchwWinograd.Supports(g) && g.InChannels >= MinWinogradChannels && g.OutChannels >= MinWinogradChannels && !NarrowConv3x3.Supports(g);

    [ThreadStatic] private static AlignedBuffer? _winogradWeights;

    public static void Forward(in ConvGeometry g, int batch, float* x, float* w, float* bias, float* y)
    {
        var geometry = g;
        if (TakesWinograd(g))
        {
            int tile = NchwWinograd.TileFor(g);
            var u = Scratch(ref _winogradWeights, checked((int)NchwWinograd.WeightSize(g.OutChannels, g.InChannels, tile)));
            NchwWinograd.TransformWeights(w, g.OutChannels, g.InChannels, u.Pointer, tile);
            NchwWinograd.Forward(g, batch, x, u.Pointer, bias, y, tile);
            return;
        }
        if (SingleChannelConv.Supports(g))
        {
            SingleChannelConv.Forward(g, batch, x, w, bias, y);
            return;
        }
        if (NarrowConv3x3.Supports(g))
        {
            NarrowConv3x3.Forward(g, batch, x, w, bias, y);
            return;
        }
        if (g.Stride == 1)
        {
            int[] wRows = RowOffsets(g.OutChannels, g.PatchSize);
            nint xs = (nint)x, ws = (nint)w, ys = (nint)y, bs = (nint)bias;
            WorkerPool.For(batch, n =>
            {
                float* yn = (float*)ys + (long)n * geometry.OutImage;
                ShiftedViewConv(geometry.InChannels, geometry.Height, geometry.Width, (float*)xs + (long)n * geometry.InImage,
                    (float*)ws, wRows, geometry.OutChannels, geometry.KernelH, geometry.Padding, yn);
                AddBias(yn, (float*)bs, geometry.OutChannels, geometry.OutPlane);
            });
            return;
        }
        if (Stride2Conv3x3.Supports(g))
        {
            Stride2Conv3x3.Forward(g, batch, x, w, bias, y);
            return;
        }
        if (g.Stride == 2 && g.KernelH == g.KernelW && g.KernelH > 1)
        {
            // On the input's four phases every tap is a shifted view again (PadImagesPhased): no im2col, and the
            // product runs over OH·Wq wide pixels like the stride-1 case.
            int hq = (g.Height + 2 * g.Padding + 1) / 2, wq = (g.Width + 2 * g.Padding + 1) / 2;
            int[] phaseRows = PhaseTable(g.InChannels, hq, wq, g.KernelH);
            int[] wRows = RowOffsets(g.OutChannels, g.PatchSize);
            nint xs = (nint)x, ws = (nint)w, ys = (nint)y, bs = (nint)bias;
            WorkerPool.For(batch, n =>
            {
                float* phases = PadImagesPhased(geometry, (float*)xs + (long)n * geometry.InImage, 1);
                float* yn = (float*)ys + (long)n * geometry.OutImage;
                ViewConv(phases, phaseRows, geometry.PatchSize, wq, (float*)ws, wRows, geometry.OutChannels, geometry.OutHeight, geometry.OutWidth, yn);
                AddBias(yn, (float*)bs, geometry.OutChannels, geometry.OutPlane);
            });
            return;
        }
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
            AddBias(yn, (float*)bp, geometry.OutChannels, p);
        });
    }

    private static void AddBias(float* y, float* bias, int channels, int plane)
    {
        if (bias == null) return;
        for (int c = 0; c < channels; c++)
        {
            float b = bias[c];
            var row = new Span<float>(y + (long)c * plane, plane);
            for (int i = 0; i < row.Length; i++) row[i] += b;
        }
    }

    [ThreadStatic] private static AlignedBuffer? _padded, _wide;
    private static readonly Dictionary<(int, int, int, int, int), int[]> ShiftTables = [];

    /// <summary>
    /// A stride-1 convolution of one image without im2col: the input is copied once into a zero-padded plane of width
    /// Wp = W + 2·pad, and row (c, kh, kw) of the implicit im2col matrix is then the contiguous view starting at
    /// c·Hp·Wp + kh·Wp + kw. The product runs over OH·Wp "wide" pixels (the last Wp − OW of each row are junk) and
    /// the valid columns are copied out. w is (OUT, C·k·k) row-major; out is (OUT, OH, OW).
    /// </summary>
    private static void ShiftedViewConv(int channels, int h, int w, float* input, float* weights, int[] weightRows, int outChannels, int k, int pad, float* output)
    {
        int hp = h + 2 * pad, wp = w + 2 * pad, oh = hp - k + 1, ow = wp - k + 1;
        float* pp = PadImage(channels, h, w, input, pad, k);
        ViewConv(pp, ShiftTable(channels, hp, wp, k), channels * k * k, wp, weights, weightRows, outChannels, oh, ow, output);
    }

    /// <summary>
    /// output (OUT, OH, OW) = W · views, where row r of the (K, OH·viewWidth) right-hand side is the contiguous view at
    /// source + rows[r]: the product runs over "wide" rows of viewWidth pixels and the first OW of each are kept.
    /// </summary>
    private static void ViewConv(float* source, int[] rows, int k, int viewWidth, float* weights, int[] weightRows, int outChannels, int oh, int ow, float* output)
    {
        int wideColumns = oh * viewWidth;
        bool direct = viewWidth == ow;  // no junk columns (1x1 without padding): write the output in place
        float* wide = direct ? output : Scratch(ref _wide, outChannels * wideColumns).Pointer;
        fixed (int* ro = rows)
            PackedGemm.Run(new PanelMatrix(source, null, wideColumns, 1, k, ro), weights, weightRows, outChannels, wide, wideColumns, null, 0, relu: false, accumulate: false);
        if (direct) return;
        for (int c = 0; c < outChannels; c++)
            for (int y = 0; y < oh; y++)
                Buffer.MemoryCopy(wide + ((long)c * oh + y) * viewWidth, output + ((long)c * oh + y) * ow, ow * sizeof(float), ow * sizeof(float));
    }

    /// <summary>
    /// Copies one image into the calling thread's zero-padded scratch (C, H + 2·pad, W + 2·pad), with NR + k floats of
    /// slack after it, since the micro-kernel reads whole panels past a shifted view's last valid column.
    /// </summary>
    private static float* PadImage(int channels, int h, int w, float* input, int pad, int k)
    {
        int hp = h + 2 * pad, wp = w + 2 * pad, slack = wp * (k - 1) + k + PackedGemm.NR;
        var padded = Scratch(ref _padded, channels * hp * wp + slack);
        var pp = padded.Pointer;
        PadPlanes(input, channels, h, w, pad, pp);
        new Span<float>(pp + (long)channels * hp * wp, slack).Clear();
        return pp;
    }

    /// <summary>
    /// dst = the `channels` (h, w) planes of input, each zero-padded to (h + 2·pad, w + 2·pad). Only the border is
    /// cleared: the scratch is shared by every layer and grows to the largest, and clearing all of it per image cost
    /// more than the copy for the small layers.
    /// </summary>
    private static void PadPlanes(float* input, int channels, int h, int w, int pad, float* dst)
    {
        int hp = h + 2 * pad, wp = w + 2 * pad;
        for (int c = 0; c < channels; c++)
        {
            float* d = dst + (long)c * hp * wp;
            new Span<float>(d, pad * wp + pad).Clear();  // the top rows and the first row's left border
            for (int y = 0; y < h; y++)
            {
                float* row = d + (long)(y + pad) * wp + pad;
                Buffer.MemoryCopy(input + ((long)c * h + y) * w, row, w * sizeof(float), w * sizeof(float));
                new Span<float>(row + w, 2 * pad).Clear();  // this row's right border and the next row's left one
            }
            new Span<float>(d + (long)(h + pad) * wp, pad * wp).Clear();  // the bottom rows
        }
    }

    [ThreadStatic] private static AlignedBuffer? _paddedImages;

    /// <summary>Several images padded one after another (as <see cref="PadImage"/>), with slack after the last.</summary>
    private static float* PadImages(in ConvGeometry g, float* input, int images)
    {
        int hp = g.Height + 2 * g.Padding, wp = g.Width + 2 * g.Padding, image = g.InChannels * hp * wp;
        int slack = wp * (g.KernelH - 1) + g.KernelH + PackedGemm.NR;
        var buffer = Scratch(ref _paddedImages, images * image + slack);
        float* pp = buffer.Pointer;
        for (int t = 0; t < images; t++)
            PadPlanes(input + (long)t * g.InImage, g.InChannels, g.Height, g.Width, g.Padding, pp + (long)t * image);
        new Span<float>(pp + (long)images * image, slack).Clear();
        return pp;
    }

    [ThreadStatic] private static AlignedBuffer? _phasedImages;
    [ThreadStatic] private static (AlignedBuffer?, int, int, int, int, int, int) _phasedLayout;

    /// <summary>
    /// Several images, each channel zero-padded and split into its four phases for a stride-2 convolution:
    /// phase (a, b) of channel c is the (Hq, Wq) plane xPad[2i + a][2j + b] (Hq, Wq = half the padded height and
    /// width, rounded up), at ((c·2 + a)·2 + b)·Hq·Wq. Tap (kh, kw) of output pixel (oy, ox) is then phase
    /// (kh mod 2, kw mod 2) at (oy + kh/2, ox + kw/2): a shifted view again. Slack follows the last image.
    /// </summary>
    internal static float* PadImagesPhased(in ConvGeometry g, float* input, int images)
    {
        int hq = (g.Height + 2 * g.Padding + 1) / 2, wq = (g.Width + 2 * g.Padding + 1) / 2, plane = hq * wq, image = g.InChannels * 4 * plane;
        int needed = images * image + wq * g.KernelH + g.KernelH + PackedGemm.NR;
        var buffer = Scratch(ref _phasedImages, needed);
        float* pp = buffer.Pointer;
        // The phases interleave, so the whole of it is cleared (not the scratch's full length): but only when the
        // layout changes. The copy below writes the same positions every time, so the padding and the slack are still
        // zero from the last clear when the same shape comes again. resnet20's stride-2 forward calls this once per
        // image, clearing 57 KB and copying 50: the copy alone took 0.5–0.66 ms of that kernel's 1.4–1.7 (a scratch
        // timing with the kernel's arithmetic skipped).
        var layout = (buffer, g.InChannels, g.Height, g.Width, g.Padding, g.KernelH, images);
        if (_phasedLayout != layout)
        {
            new Span<float>(pp, needed).Clear();
            _phasedLayout = layout;
        }
        int pad = g.Padding, w = g.Width;
        for (int t = 0; t < images; t++)
            for (int c = 0; c < g.InChannels; c++)
            {
                float* src = input + ((long)t * g.InChannels + c) * g.InPlane;
                float* dst = pp + (long)t * image + (long)c * 4 * plane;
                for (int y = 0; y < g.Height; y++)
                {
                    int py = y + pad;
                    float* row = src + (long)y * w;
                    // Padded column px = x + pad goes to phase px mod 2 at px / 2: one stride-2 walk per phase.
                    float* even = dst + ((py & 1) * 2 * hq + (py >> 1)) * wq, odd = even + (long)hq * wq;
                    if (Avx512F.IsSupported)
                    {
                        // Column 2j lands at j + pad/2 (rounded down) in the phase of pad's parity, column 2j + 1 at
                        // j + (pad + 1)/2 in the other.
                        float* ofEvenColumns = (pad & 1) == 0 ? even : odd, ofOddColumns = (pad & 1) == 0 ? odd : even;
                        Deinterleave.Row(row, w, ofEvenColumns + (pad >> 1), ofOddColumns + ((pad + 1) >> 1));
                        continue;
                    }
                    int x0 = pad & 1;  // the first x whose padded column is even
                    for (int x = x0; x < w; x += 2) even[(x + pad) >> 1] = row[x];
                    for (int x = 1 - x0; x < w; x += 2) odd[(x + pad) >> 1] = row[x];
                }
            }
        return pp;
    }

    // offsets[(c, kh, kw)] = ((c·2 + kh mod 2)·2 + kw mod 2)·Hq·Wq + (kh/2)·Wq + kw/2: the phase views, cached per shape.
    private static int[] PhaseTable(int channels, int hq, int wq, int k)
    {
        lock (ShiftTables)
        {
            if (!ShiftTables.TryGetValue((channels, hq, wq, k, 2), out var t))
            {
                t = new int[channels * k * k];
                for (int c = 0; c < channels; c++)
                    for (int kh = 0; kh < k; kh++)
                        for (int kw = 0; kw < k; kw++)
                            t[(c * k + kh) * k + kw] = ((c * 2 + (kh & 1)) * 2 + (kw & 1)) * hq * wq + (kh >> 1) * wq + (kw >> 1);
                ShiftTables[(channels, hq, wq, k, 2)] = t;
            }
            return t;
        }
    }

    // offsets[r·images + t] = t·imageStride + rows[r]: row r of the shifted views in padded image t. Cached per table
    // (the shift tables are themselves cached per shape, so the array identifies the shape).
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<int[], Dictionary<(int, int), int[]>> StackedTables = new();

    private static int[] StackedShiftRows(int[] rows, int images, int imageStride)
    {
        var perTable = StackedTables.GetValue(rows, _ => []);
        lock (perTable)
        {
            if (!perTable.TryGetValue((images, imageStride), out var t))
            {
                t = new int[rows.Length * images];
                for (int r = 0; r < rows.Length; r++)
                    for (int i = 0; i < images; i++) t[r * images + i] = i * imageStride + rows[r];
                perTable[(images, imageStride)] = t;
            }
            return t;
        }
    }

    // offsets[(c, kh, kw)] = c·Hp·Wp + kh·Wp + kw, cached per shape.
    private static int[] ShiftTable(int channels, int hp, int wp, int k)
    {
        lock (ShiftTables)
        {
            if (!ShiftTables.TryGetValue((channels, hp, wp, k, 0), out var t))
            {
                t = new int[channels * k * k];
                for (int c = 0; c < channels; c++)
                    for (int kh = 0; kh < k; kh++)
                        for (int kw = 0; kw < k; kw++) t[(c * k + kh) * k + kw] = c * hp * wp + kh * wp + kw;
                ShiftTables[(channels, hp, wp, k, 0)] = t;
            }
            return t;
        }
    }

    /// <summary>dx overwritten (skipped when null); dw and dbias accumulated (dbias may be null).</summary>
    public static void Backward(in ConvGeometry g, int batch, float* x, float* w, float* dy, float* dx, float* dw, float* dbias)
    {
        if (SingleChannelConv.Supports(g))
        {
            SingleChannelConv.WeightGradient(g, batch, x, dy, dw);
            if (dx != null)
            {
                // dx (rarely wanted of an image) by the general path, its weight gradient discarded.
                var discarded = new float[g.WeightSize];
                fixed (float* scratch = discarded) BackwardProducts(g, batch, x, w, dy, dx, scratch, null);
            }
            AddBiasGradient(g, batch, dy, dbias);
            return;
        }
        BackwardProducts(g, batch, x, w, dy, dx, dw, dbias);
    }

    private static void BackwardProducts(in ConvGeometry g, int batch, float* x, float* w, float* dy, float* dx, float* dw, float* dbias)
    {
        var geometry = g;
        int k = g.PatchSize, p = g.OutPlane, oc = g.OutChannels, nr = PackedGemm.NR;
        bool shifted = g.Stride == 1 && g.KernelH == g.KernelW && g.Padding <= g.KernelH - 1;
        bool winograd = shifted && TakesWinograd(g);
        bool winogradDx = dx != null && winograd;   // its weights come from w directly (no flipped copy)
        bool narrowDx = dx != null && NarrowConv3x3.Supports(g);   // likewise
        if (winograd && WinogradWeightGradient && Math.Min(g.InChannels, g.OutChannels) >= MinWinogradGradientChannels)
        {
            // Weight and input gradients both by Winograd.
            NchwWinograd.WeightGradient(g, batch, x, dy, dw, NchwWinograd.TileFor(g));
            if (winogradDx) WinogradInputGradient(g, batch, w, dy, dx);
            AddBiasGradient(g, batch, dy, dbias);
            return;
        }
        int groups = Math.Max(1, Math.Min(Engine.Threads, batch));
        EnsureWeightGradParts(groups, (oc + nr - 1) / nr * nr * k);
        var parts = _weightGradParts!.Select(b => (nint)b.Pointer).ToArray();
        float* wT = null;
        if (dx != null && shifted && !winogradDx && !narrowDx)
        {
            // dx = correlation of dy (padded by k − 1 − pad) with the weights rotated by 180° and transposed:
            // w'[ic, (oc, kh, kw)] = w[oc, ic, k − 1 − kh, k − 1 − kw].
            int kk = g.KernelH, taps = kk * kk, ic = g.InChannels;
            var t = _transposedWeights = _transposedWeights is { } b0 && b0.Length >= oc * k ? b0 : new AlignedBuffer(oc * k);
            // In 16x16 channel blocks over the threads: one channel order at a time, either the reads or the writes
            // jump a whole row per element (9 MB of weights for 512 channels).
            nint tp = (nint)t.Pointer, wp0 = (nint)w;
            const int Block = 16;
            WorkerPool.For((ic + Block - 1) / Block, ib =>
            {
                float* dst = (float*)tp; float* src = (float*)wp0;
                for (int o0 = 0; o0 < oc; o0 += Block)
                    for (int i = ib * Block; i < Math.Min(ic, ib * Block + Block); i++)
                        for (int o = o0; o < Math.Min(oc, o0 + Block); o++)
                            for (int tap = 0; tap < taps; tap++)
                                dst[(long)i * oc * taps + o * taps + tap] = src[((long)o * ic + i) * taps + (taps - 1 - tap)];
            });
            wT = t.Pointer;
        }
        else if (dx != null && !shifted)
        {
            // Wᵀ (K,OC), the left operand of dcol = Wᵀ·dy: rows read with broadcasts must be contiguous.
            var t = _transposedWeights = _transposedWeights is { } b && b.Length >= oc * k ? b : new AlignedBuffer(oc * k);
            const int Block = 16;
            for (int o0 = 0; o0 < oc; o0 += Block)
                for (int i0 = 0; i0 < k; i0 += Block)
                    for (int o = o0; o < Math.Min(oc, o0 + Block); o++)
                        for (int i = i0; i < Math.Min(k, i0 + Block); i++) t.Pointer[(long)i * oc + o] = w[(long)o * k + i];
            wT = t.Pointer;
        }
        int[] wTRows = RowOffsets(k, oc);
        int[] flippedRows = RowOffsets(g.InChannels, oc * g.KernelH * g.KernelW);
        nint xp = (nint)x, dyp = (nint)dy, dxp = (nint)dx, wTp = (nint)wT;
        int kPanels = (k + nr - 1) / nr;
        // dW (OC,K) += Σn dy_n (OC,P) · col_nᵀ (P,K) for several images in one product: the images are the "taps" of
        // the reduction (row r of image t is at dy + t·OC·P + r·P), and their colᵀ panels are stacked along it. With
        // small planes (7x7: P = 49) one image alone gives the micro-kernel too short a reduction.
        int subBatch = Math.Max(1, Math.Min(batch, StackedPanelFloats / Math.Max(1, p * kPanels * nr)));
        // The weight gradient, by case:
        // - 3x3 stride 1 on AVX-512: a tile of whole input channels (Conv3x3WeightGradient), dWᵀ in rows of 16 or a
        //   multiple of 32 output channels;
        // - other stride-1 kernels (and 3x3 without AVX-512): dWᵀ transposed from shifted views of the padded input
        //   (no transposed im2col), up to 32 output channels in 32-wide panels (the 6x32 zmm tile) on AVX-512;
        // - stride 2 (below): the same transposed product on the input's four phases;
        // - anything else (1x1 stride 2): dW from a transposed im2col.
        bool tapDw = shifted && Conv3x3WeightGradient.Supports(g);
        // Stride 2: the input split into its four phases (even/odd rows × even/odd columns), in which every tap's
        // rows are again shifted views, so the transposed product applies with no im2col (PadImagesPhased).
        bool phased = !shifted && g.Stride == 2 && g.KernelH == g.KernelW && g.KernelH > 1;  // 1x1: one phase, the old path
        bool transposedDw = (shifted && !tapDw) || phased, transposedParts = shifted || phased;
        int phaseHeight = (g.Height + 2 * g.Padding + 1) / 2, phaseWidth = (g.Width + 2 * g.Padding + 1) / 2;
        int dwNr = tapDw ? Conv3x3WeightGradient.PaddedOutChannels(oc) : nr == 64 && oc <= 32 ? 32 : nr;
        int dwPanels = (oc + dwNr - 1) / dwNr, dwColumns = dwPanels * dwNr;
        int paddedWidth = g.Width + 2 * g.Padding, viewWidth = phased ? phaseWidth : paddedWidth, wideColumns = g.OutHeight * viewWidth;
        int[] shiftRows = !transposedDw ? [] : phased ? PhaseTable(g.InChannels, phaseHeight, phaseWidth, g.KernelH)
            : ShiftTable(g.InChannels, g.Height + 2 * g.Padding, paddedWidth, g.KernelH);
        int paddedImage = phased ? g.InChannels * 4 * phaseHeight * phaseWidth : g.InChannels * (g.Height + 2 * g.Padding) * paddedWidth;
        int dwImages = Math.Max(1, Math.Min(batch, StackedPanelFloats / Math.Max(1, dwPanels * wideColumns * dwNr + paddedImage)));
        if (tapDw)
        {
            // The kernel's passes (one input channel, 16 or 32 output channels) each read one slice of every image's
            // gradient rows and one input plane: keep that under 512 KB, so a pass's data stays in L2 and the dWᵀ
            // partial sums (9 MB for 512 channels) are read and written once per sub-batch, not once per image.
            int hpwp = (g.Height + 2 * g.Padding) * paddedWidth;
            long perImage = (long)wideColumns * Math.Min(dwNr, 32) + (dwNr == 16 ? 2 : 1) * hpwp;
            dwImages = (int)Math.Max(1, Math.Min(batch, (StackedPanelFloats / 2) / perImage));
        }
        WorkerPool.For(groups, group =>
        {
            float* dwPart = (float*)parts[group];
            new Span<float>(dwPart, transposedParts ? dwColumns * k : oc * k).Clear();
            int start = group * batch / groups, end = (group + 1) * batch / groups;
            int sub = Math.Min(subBatch, Math.Max(1, end - start));
            var a = Scratch(ref _scratchA, Math.Max(transposedParts ? 0 : kPanels * sub * p * nr,
                transposedParts ? dwPanels * dwImages * wideColumns * dwNr : 0));
            var b = Scratch(ref _scratchB, k * p + 16);  // the im2col rows of the weight gradient (+ slack for whole-vector reads)
            for (int n0 = start; n0 < end; n0 += sub)
            {
                int count = Math.Min(sub, end - n0);
                if (tapDw)
                    for (int start2 = n0; start2 < n0 + count; start2 += dwImages)
                    {
                        int images = Math.Min(dwImages, n0 + count - start2);
                        float* xpad = PadImages(geometry, (float*)xp + (long)start2 * geometry.InImage, images);
                        Conv3x3WeightGradient.TransposeGradients(geometry, (float*)dyp + (long)start2 * geometry.OutImage, images, a.Pointer);
                        Conv3x3WeightGradient.Accumulate(geometry, xpad, paddedImage, a.Pointer, images, dwPart);
                    }
                else if (transposedDw)
                {
                    // dWᵀ (K, OC) += col · dyᵀ without a transposed im2col: the rows of col are shifted views of the
                    // padded images, and dyᵀ (junk wide columns zero) is packed in panels of dwNr output channels.
                    // Images are stacked along the reduction ("taps"), so dWᵀ is read and written once per
                    // sub-batch instead of once per image (9 MB per image for a 512-channel 3x3 layer).
                    for (int start2 = n0; start2 < n0 + count; start2 += dwImages)
                    {
                        int images = Math.Min(dwImages, n0 + count - start2);
                        float* xpad = phased ? PadImagesPhased(geometry, (float*)xp + (long)start2 * geometry.InImage, images)
                            : PadImages(geometry, (float*)xp + (long)start2 * geometry.InImage, images);
                        float* panels = a.Pointer;
                        GradientPanels.Pack(geometry, (float*)dyp + (long)start2 * geometry.OutImage, images, viewWidth, dwNr, dwPanels,
                            (long)images * wideColumns * dwNr, panels);
                        PackedGemm.Run(new PanelMatrix(panels, null, oc, images, wideColumns, null, dwNr), xpad, StackedShiftRows(shiftRows, images, paddedImage),
                            k, dwPart, dwColumns, null, 0, relu: false, accumulate: true);
                    }
                }
                else
                for (int i = 0; i < count; i++)
                    PackIm2ColTransposed(geometry, (float*)xp + (long)(n0 + i) * geometry.InImage, a.Pointer + (long)i * p * nr, b.Pointer, (long)count * p * nr);
                if (!transposedParts)
                    PackedGemm.Run(new PanelMatrix(a.Pointer, null, k, count, p), (float*)dyp + (long)n0 * geometry.OutImage, ImageRowOffsets(oc, p, count), oc, dwPart, k,
                        null, 0, relu: false, accumulate: true);
                if (dxp == 0 || winogradDx || narrowDx) continue;
                if (!shifted)
                {
                    ColumnInputGradient(geometry, (float*)dyp, n0, count, (float*)wTp, wTRows, (float*)dxp);
                    continue;
                }
                for (int n = n0; n < n0 + count; n++)
                    ShiftedViewConv(oc, geometry.OutHeight, geometry.OutWidth, (float*)dyp + (long)n * geometry.OutImage, (float*)wTp, flippedRows,
                        geometry.InChannels, geometry.KernelH, geometry.KernelH - 1 - geometry.Padding, (float*)dxp + (long)n * geometry.InImage);
            }
        });
        if (winogradDx) WinogradInputGradient(g, batch, w, dy, dx);
        if (narrowDx) NarrowConv3x3.InputGradient(g, batch, dy, w, dx);
        if (transposedParts) AddTransposedParts(parts, groups, dw, oc, k, dwColumns);
        else
            for (int gi = 0; gi < groups; gi++)
            {
                float* part = (float*)parts[gi];
                for (int i = 0; i < oc * k; i++) dw[i] += part[i];
            }
        AddBiasGradient(g, batch, dy, dbias);
    }

    [ThreadStatic] private static AlignedBuffer? _dyPanels, _columnGradients;
    private const int ColumnGradientFloats = 1 << 19;  // 2 MB of dcol per product

    /// <summary>
    /// dx of images [n0, n0 + count) through dcol = Wᵀ·dy and col2im, several images per product: dcol (K, m·P) =
    /// Wᵀ (K, OC) · [dy_n0 … dy_n0+m−1] (OC, m·P). One image per product gave small planes (7x7: P = 49) a single
    /// 64-wide panel, and streamed all of Wᵀ (4.7 MB for resnet18's 256→512 stride-2 layer) once per image.
    /// </summary>
    private static void ColumnInputGradient(in ConvGeometry g, float* dy, int n0, int count, float* wT, int[] wTRows, float* dx)
    {
        int k = g.PatchSize, p = g.OutPlane, oc = g.OutChannels, nr = PackedGemm.NR;
        int perProduct = Math.Max(1, Math.Min(count, ColumnGradientFloats / Math.Max(1, k * p)));
        int maxColumns = perProduct * p, maxPanels = (maxColumns + nr - 1) / nr;
        float* panels = Scratch(ref _dyPanels, maxPanels * oc * nr).Pointer;
        float* dcol = Scratch(ref _columnGradients, k * maxPanels * nr + 16).Pointer;
        for (int i0 = n0; i0 < n0 + count; i0 += perProduct)
        {
            int images = Math.Min(perProduct, n0 + count - i0), columns = images * p;
            PackImageColumns(dy + (long)i0 * g.OutImage, g.OutImage, oc, p, images, panels);
            // With at most 64 output channels (a reduction that short), dcol's rows are padded to whole panels and the
            // lean serial product runs (PackedGemm.RunSmall; this runs on one thread of the images' loop): the zero
            // columns of the last panel land in the padding. RunBlock's setup per tile cost about as much as the
            // 32 channel steps: resnet20's layer2.0.conv1 backward 0.86x, layer3.0.conv1 0.956x (`bench/run.sh --ab`
            // with a temporary switch, --ab-layers, 16 rounds).
            int stride = columns;
            if (nr == 64 && oc <= 64)
            {
                stride = (columns + nr - 1) / nr * nr;
                fixed (int* rows = wTRows)
                    PackedGemm.RunSerial(new PanelMatrix(panels, null, stride, 1, oc), wT, rows, k, dcol, stride);
            }
            else PackedGemm.Run(new PanelMatrix(panels, null, columns, 1, oc), wT, wTRows, k, dcol, columns, null, 0, relu: false, accumulate: false);
            for (int j = 0; j < images; j++)
                Conv2dKernel.Col2Im<float>(g, new ReadOnlySpan<float>(dcol + (long)j * p, (k - 1) * stride + p),
                    new Span<float>(dx + (long)(i0 + j) * g.InImage, g.InImage), stride);
        }
    }

    /// <summary>
    /// The (rows, images·plane) matrix whose row r is [src_0[r], src_1[r], …] (src_t = src + t·imageStride, rows of
    /// `plane` floats) packed in panels of NR columns, zero past the last.
    /// </summary>
    private static void PackImageColumns(float* src, long imageStride, int rows, int plane, int images, float* dst)
    {
        int nr = PackedGemm.NR, cols = images * plane, panels = (cols + nr - 1) / nr;
        for (int panel = 0; panel < panels; panel++)
        {
            int c0 = panel * nr, count = Math.Min(nr, cols - c0);
            for (int r = 0; r < rows; r++)
            {
                float* d = dst + ((long)panel * rows + r) * nr;
                for (int done = 0; done < count;)
                {
                    int c = c0 + done, image = c / plane, pixel = c - image * plane, run = Math.Min(count - done, plane - pixel);
                    new ReadOnlySpan<float>(src + image * imageStride + (long)r * plane + pixel, run).CopyTo(new Span<float>(d + done, run));
                    done += run;
                }
                if (count < nr) new Span<float>(d + count, nr - count).Clear();
            }
        }
    }

    /// <summary>dx = the stride-1 padding-1 convolution of dy with the flipped, transposed weights (OC → IC channels), by Winograd.</summary>
    private static void WinogradInputGradient(in ConvGeometry g, int batch, float* w, float* dy, float* dx)
    {
        var dxGeometry = new ConvGeometry(g.OutChannels, g.OutHeight, g.OutWidth, g.InChannels, 3, 3, 1, 1);
        int tile = NchwWinograd.TileFor(dxGeometry);
        var u = Scratch(ref _winogradWeights, checked((int)NchwWinograd.WeightSize(g.InChannels, g.OutChannels, tile)));
        NchwWinograd.TransformWeights(w, g.OutChannels, g.InChannels, u.Pointer, tile, forInputGradient: true);
        NchwWinograd.Forward(dxGeometry, batch, dy, u.Pointer, null, dx, tile);
    }

    // dbias[o] += Σ over the batch and the plane of dy[n, o] (skipped when dbias is null).
    private static void AddBiasGradient(in ConvGeometry g, int batch, float* dy, float* dbias)
    {
        if (dbias == null) return;
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < g.OutChannels; o++)
            {
                float s = 0;
                float* row = dy + (long)n * g.OutImage + (long)o * g.OutPlane;
                for (int i = 0; i < g.OutPlane; i++) s += row[i];
                dbias[o] += s;
            }
    }

    /// <summary>
    /// dw[o, i] += Σ_groups part[i, o] (parts of row length `columns`), in 16x16 blocks over the worker threads: walked
    /// row by row, one of the two sides jumps a whole row per element, and for 512 channels (9 MB) this took longer
    /// than computing the parts. On AVX-512 a whole block is summed over the parts in vectors and transposed in
    /// registers (Transposes.Transpose16) instead of 256 scalar adds per part.
    /// </summary>
    private static void AddTransposedParts(nint[] parts, int groups, float* dw, int oc, int k, int columns)
    {
        const int Block = 16;
        nint dwp = (nint)dw;
        int oBlocks = (oc + Block - 1) / Block;
        bool vectors = Vector512.IsHardwareAccelerated;
        WorkerPool.For(oBlocks, ob =>
        {
            int o0 = ob * Block, o1 = Math.Min(oc, o0 + Block);
            float* sums = stackalloc float[Block * Block];
            float* transposed = stackalloc float[Block * Block];
            float** rows = stackalloc float*[Block];
            for (int r = 0; r < Block; r++) rows[r] = sums + r * Block;
            for (int i0 = 0; i0 < k; i0 += Block)
            {
                int i1 = Math.Min(k, i0 + Block);
                if (vectors && o1 - o0 == Block && i1 - i0 == Block)
                {
                    // sums[r] = Σ_parts part[i0 + r][o0 .. o0 + 16]; transposed[j] = column j of that = dw row o0 + j.
                    for (int r = 0; r < Block; r++)
                    {
                        var v = Vector512<float>.Zero;
                        for (int gi = 0; gi < groups; gi++) v += Vector512.Load((float*)parts[gi] + (long)(i0 + r) * columns + o0);
                        v.Store(sums + r * Block);
                    }
                    Transposes.Transpose16(rows, transposed, Block, Block);
                    for (int j = 0; j < Block; j++)
                    {
                        float* row = (float*)dwp + (long)(o0 + j) * k + i0;
                        (Vector512.Load(row) + Vector512.Load(transposed + j * Block)).Store(row);
                    }
                    continue;
                }
                for (int gi = 0; gi < groups; gi++)
                {
                    float* part = (float*)parts[gi];
                    for (int o = o0; o < o1; o++)
                    {
                        float* row = (float*)dwp + (long)o * k;
                        for (int i = i0; i < i1; i++) row[i] += part[(long)i * columns + o];
                    }
                }
            }
        });
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
    internal static void PackIm2ColTransposed(in ConvGeometry g, float* x, float* dst, float* col, long panelStride)
    {
        int nr = PackedGemm.NR, p = g.OutPlane, k = g.PatchSize, khw = g.KernelH * g.KernelW;
        for (int kk = 0; kk < k; kk++)
        {
            int ic = kk / khw, rem = kk - ic * khw, kh = rem / g.KernelW, kw = rem - kh * g.KernelW;
            GatherRow(g, x + (long)ic * g.InPlane, kh, kw, 0, p, col + (long)kk * p, 1);
        }
        int panels = (k + nr - 1) / nr;
        const int Block = 16;
        if (nr == 64 && Vector512.IsHardwareAccelerated)
        {
            // 16 patch rows × 16 pixels at a time, transposed in registers. A block's vector may read past the last
            // pixel of its row (the next row's values, or the slack after col, never stored).
            var rows = stackalloc float*[16];
            for (int panel = 0; panel < panels; panel++)
                for (int kb = 0; kb < nr; kb += Block)
                {
                    int k0 = panel * nr + kb;
                    for (int p0 = 0; p0 < p; p0 += Block)
                    {
                        for (int i = 0; i < Block; i++) rows[i] = k0 + i < k ? col + (long)(k0 + i) * p + p0 : null;
                        Transposes.Transpose16(rows, dst + panel * panelStride + (long)p0 * nr + kb, nr, Math.Min(Block, p - p0));
                    }
                }
            return;
        }
        for (int panel = 0; panel < panels; panel++)
        {
            float* d = dst + panel * panelStride;
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

    internal static AlignedBuffer Scratch(ref AlignedBuffer? buffer, int length)
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

    private const int StackedPanelFloats = 1 << 18;  // 1 MB of stacked colᵀ panels per dW product: stays in L2

    // offsets[r·images + t] = t·rows·plane + r·plane: row r of image t of a batch of (rows, plane) matrices.
    private static int[] ImageRowOffsets(int rows, int plane, int images)
    {
        lock (ShiftTables)
        {
            if (!ShiftTables.TryGetValue((rows, plane, images, 0, 1), out var t))
            {
                t = new int[rows * images];
                for (int r = 0; r < rows; r++)
                    for (int i = 0; i < images; i++) t[r * images + i] = i * rows * plane + r * plane;
                ShiftTables[(rows, plane, images, 0, 1)] = t;
            }
            return t;
        }
    }

    // offsets[r] = r·stride: the rows of a dense row-major left operand. Cached per (rows, stride).
    private static readonly Dictionary<(int, int), int[]> RowTables = [];
    internal static int[] RowOffsets(int rows, int stride)
    {
        lock (RowTables)
        {
            if (!RowTables.TryGetValue((rows, stride), out var t))
                RowTables[(rows, stride)] = t = Enumerable.Range(0, rows).Select(r => r * stride).ToArray();
            return t;
        }
    }
}
