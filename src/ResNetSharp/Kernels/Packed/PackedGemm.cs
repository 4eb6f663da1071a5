using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// Weights of a convolution or a linear layer packed once for <see cref="PackedGemm"/>: panels of NR output channels,
/// each laid out [tap][input channel][NR], so the micro-kernel streams them with aligned vector loads. The last panel
/// is zero-padded when OC is not a multiple of NR. Bias (folded BN shift included) is padded the same way.
/// </summary>
public sealed unsafe class PackedWeights
{
    internal PackedWeights(int outChannels, int taps, int inChannels, int nr)
    {
        OutChannels = outChannels; Taps = taps; InChannels = inChannels; NR = nr;
        Panels = (outChannels + nr - 1) / nr;
        Data = new AlignedBuffer(Panels * taps * inChannels * nr);
        Bias = new AlignedBuffer(Panels * nr);
    }

    public int OutChannels { get; }
    public int Taps { get; }
    public int InChannels { get; }
    public int NR { get; }
    public int Panels { get; }
    internal AlignedBuffer Data { get; }
    internal AlignedBuffer Bias { get; }
    public int PanelSize => Taps * InChannels * NR;

    internal PanelMatrix AsPanels() => new(Data.Pointer, Bias.Pointer, OutChannels, Taps, InChannels);

    /// <summary>
    /// Packs w[oc, ic, tap] (PyTorch's (OC,IC,KH,KW) with tap = kh·KW + kw) times scale[oc], and bias[oc]; scale and
    /// bias may be empty (1 and 0).
    /// </summary>
    public static PackedWeights FromOihw(ReadOnlySpan<float> w, int outChannels, int inChannels, int taps, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias)
    {
        if (w.Length != outChannels * inChannels * taps)
            throw new ArgumentException($"weights have {w.Length} values, expected {outChannels}x{inChannels}x{taps}");
        var p = new PackedWeights(outChannels, taps, inChannels, PackedGemm.NR);
        var data = p.Data.Span;
        var b = p.Bias.Span;
        for (int oc = 0; oc < outChannels; oc++)
        {
            int panel = oc / p.NR, lane = oc % p.NR;
            float s = scale.IsEmpty ? 1f : scale[oc];
            for (int ic = 0; ic < inChannels; ic++)
                for (int t = 0; t < taps; t++)
                    data[panel * p.PanelSize + (t * inChannels + ic) * p.NR + lane] = w[(oc * inChannels + ic) * taps + t] * s;
            b[oc] = bias.IsEmpty ? 0f : bias[oc];
        }
        return p;
    }
}

/// <summary>
/// The engine's matrix product for convolutions in NHWC and for linear layers: C[m, oc] = Σ_t Σ_ic A_t[m, ic]·W[oc, ic, t]
/// + bias[oc] (+ R[m, oc]) (then max(·, 0)). Row m of A at tap t is an input pixel found through an indirection table
/// (offset of its IC channels, or −1 for the zero padding), so 3x3 and strided convolutions need no im2col copy.
/// A 6-row by NR-column register tile: NR = 64 with Vector512 (24 accumulators of AVX-512's 32 registers),
/// 16 with Vector256 and 8 with Vector128 (12 of 16). Tested against <see cref="Reference.GemmReference"/>.
/// </summary>
public static unsafe class PackedGemm
{
    public const int MR = 6;
    /// <summary>Output channels per panel for this machine's widest accelerated vector.</summary>
    public static readonly int NR = Vector512.IsHardwareAccelerated ? 64 : Vector256.IsHardwareAccelerated ? 16 : 8;
    /// <summary>Which kernel runs here: "Vector512", "Vector256" or "Vector128".</summary>
    public static string Isa => NR == 64 ? "Vector512" : NR == 16 ? "Vector256" : "Vector128";
    /// <summary>Software prefetch of the next weight chunk (on by default; off only to measure what it buys).</summary>
    internal static bool PrefetchWeights = true;
    /// <summary>Software prefetch of the next tile's input rows and residual (on by default; off only to measure it).</summary>
    internal static bool PrefetchRows = true;
    /// <summary>Spread each tile's share of the next weight chunk over all its channel steps where weights stream (on by default; off only to measure it).</summary>
    internal static bool SpreadPrefetch = true;
    /// <summary>
    /// Outputs of at least this many bytes are written with non-temporal stores (full tiles of the last K chunk): larger
    /// than the caches hold for the next layer, they go to memory either way, and a normal store first reads each line.
    /// 4 MB: resnet50 at batch 16 (outputs of 6.4 to 51 MB) ran 0.964x with it against 16 MB, its 12.8 MB 14x14 outputs
    /// 0.76–0.82x, and the layers that read them were no slower (`bench/run.sh --ab
    /// PackedGemm.StreamingBytes=16777216,4194304 --ab-work r50-b16 --ab-layers`); the training steps were level. At
    /// batch 1 nothing streams (3.2 MB at most): at 2 MB resnet50's 56x56 outputs streamed, and the layers after them
    /// read them from memory, 1.08–1.18x. Internal so that a test can make every output stream.
    /// </summary>
    internal static long StreamingBytes = 4L << 20;

    /// <summary>
    /// Whether an output of <paramref name="bytes"/> at <paramref name="c"/>, rows <paramref name="rowFloats"/> apart, is
    /// written with non-temporal stores: at least <see cref="StreamingBytes"/>, and every row vector-aligned. Shared
    /// with Winograd's output transform.
    /// </summary>
    internal static bool StreamsOutput(long bytes, float* c, int rowFloats) =>
        StreamingBytes > 0 && bytes >= StreamingBytes && ((nint)c & 63) == 0 && rowFloats % 16 == 0 && Sse.IsSupported;
    private const int KChunk = 512;       // taps·IC per pass: the weight chunk (KChunk·NR floats) stays in L2
    private const int RowsPerTask = 48;   // 8 tiles: a task streams one weight chunk over 48 output rows

    /// <summary>
    /// Runs the product for rows [0, rows). x: the input base; offsets: rows × taps entries (−1 = zero padding);
    /// c: output rows with stride ldc (OC contiguous per row); residual: same layout as c with stride ldr, or null.
    /// </summary>
    public static void Run(PackedWeights w, float* x, int[] offsets, int rows, float* c, int ldc, float* residual, int ldr, bool relu) =>
        Run(w.AsPanels(), x, offsets, rows, c, ldc, residual, ldr, relu, accumulate: false);

    /// <summary>
    /// The same product on any panel-packed right-hand side. With <paramref name="accumulate"/>, C's previous contents
    /// are added to (bias, residual and ReLU are then usually off).
    /// </summary>
    internal static void Run(PanelMatrix w, float* x, int[] offsets, int rows, float* c, int ldc, float* residual, int ldr, bool relu, bool accumulate)
    {
        if (offsets.Length < rows * w.Taps) throw new ArgumentException($"indirection table has {offsets.Length} entries, needs {rows * w.Taps}");
        int rowsPerTask = RowsPerTaskFor(rows, w.Panels);
        int rowBlocks = (rows + rowsPerTask - 1) / rowsPerTask;
        nint xp = (nint)x, cp = (nint)c, rp = (nint)residual;
        float[] zeros = ZeroRow(w.InChannels);
        if (rowBlocks >= 2 * Engine.Threads)
        {
            // Only this path streams: a 4 MB output has row blocks for every thread unless its rows are 5,000+ wide.
            // Non-temporal stores need vector-aligned rows; the fence after each task orders them before the loop's end.
            bool streaming = !accumulate && StreamsOutput((long)rows * ldc * sizeof(float), c, ldc);
            // Enough row blocks for every thread: a task takes whole rows (all the panels of its block). Split by
            // panel, two threads write alternate 256-byte pieces of the same output rows, and outputs larger than L2
            // are written at half the speed (measured: resnet50's 64→256 1x1 at 56x56, 0.55–0.72 ms → 0.41 ms).
            WorkerPool.For(rowBlocks, block =>
            {
                int r0 = block * rowsPerTask, r1 = Math.Min(rows, r0 + rowsPerTask);
                fixed (int* off = offsets)
                fixed (float* z = zeros)
                    for (int panel = 0; panel < w.Panels; panel++)
                        RunBlock(w, (float*)xp, z, off, r0, r1, panel, (float*)cp, ldc, (float*)rp, ldr, relu, accumulate,
                            panel + 1 < w.Panels ? PanelStart(w, panel + 1) : null, streaming);
                if (streaming) Sse.StoreFence();
            });
            return;
        }
        // Split by panel: a task takes a run of consecutive panels, so each panel's last chunk prefetches the next one's
        // first (a single-chunk panel, as in most 1x1 convolutions at batch 1, is otherwise read from memory unprefetched).
        int panelsPerTask = UnitsPerTask(w.Panels, rowBlocks);
        int panelRuns = (w.Panels + panelsPerTask - 1) / panelsPerTask;
        WorkerPool.For(rowBlocks * panelRuns, task =>
        {
            int run = task % panelRuns, block = task / panelRuns;
            int r0 = block * rowsPerTask, r1 = Math.Min(rows, r0 + rowsPerTask);
            int first = run * panelsPerTask, end = Math.Min(w.Panels, first + panelsPerTask);
            fixed (int* off = offsets)
            fixed (float* z = zeros)
                for (int panel = first; panel < end; panel++)
                    RunBlock(w, (float*)xp, z, off, r0, r1, panel, (float*)cp, ldc, (float*)rp, ldr, relu, accumulate,
                        panel + 1 < end ? PanelStart(w, panel + 1) : null, spreadPrefetch: true);
        });
    }

    /// <summary>
    /// How many consecutive units (panels, or batched products) one task takes: as many as leave at least two tasks
    /// per thread with the other tasks, so the threads stay balanced while a task's next weights are known ahead.
    /// </summary>
    private static int UnitsPerTask(int units, int otherTasks) => Math.Max(1, units * otherTasks / (2 * Engine.Threads) / otherTasks);

    // Where a packed panel's weights start, for prefetching; null for an unpacked right-hand side.
    private static float* PanelStart(PanelMatrix w, int panel) => w.RowOffsets == null ? w.Data + (long)panel * w.PanelSize : null;

    /// <summary>
    /// Rows per task: normally 48 (a weight chunk streamed over 8 tiles). With few rows and enough other tasks (panels,
    /// or batched products times panels) to keep the threads busy, one block takes all the rows, so each weight panel
    /// is read from memory once: resnet50's 7x7 layers at batch 1 (49 rows, 8 to 32 panels) otherwise read every
    /// weight twice, the second time for one row.
    /// </summary>
    private static int RowsPerTaskFor(int rows, int parallelTasks)
    {
        if (rows <= 4 * RowsPerTask && parallelTasks >= 2 * Engine.Threads) return Math.Max(RowsPerTask, (rows + MR - 1) / MR * MR);
        return RowsPerTask;
    }

    /// <summary>
    /// Several independent products of the same shape in one parallel loop (Winograd's 36): product p uses weights
    /// w[p], reads rows at x + p·xStride and writes at c + p·cStride (adds to C with <paramref name="accumulate"/>).
    /// One dispatch instead of one per product.
    /// </summary>
    internal static void RunBatched(PanelMatrix[] w, float* x, long xStride, int[] offsets, int rows, float* c, long cStride, int ldc, bool accumulate = false)
    {
        int products = w.Length, panels = w[0].Panels, taps = w[0].Taps;
        if (offsets.Length < rows * taps) throw new ArgumentException($"indirection table has {offsets.Length} entries, needs {rows * taps}");
        int rowsPerTask = RowsPerTaskFor(rows, products * panels);
        int rowBlocks = (rows + rowsPerTask - 1) / rowsPerTask;
        int productsPerTask = UnitsPerTask(products, rowBlocks * panels);
        int productRuns = (products + productsPerTask - 1) / productsPerTask;
        nint xp = (nint)x, cp = (nint)c;
        float[] zeros = ZeroRow(w[0].InChannels);
        WorkerPool.For(productRuns * rowBlocks * panels, task =>
        {
            int run = task / (rowBlocks * panels), rest = task % (rowBlocks * panels);
            int panel = rest % panels, block = rest / panels;
            int r0 = block * rowsPerTask, r1 = Math.Min(rows, r0 + rowsPerTask);
            int first = run * productsPerTask, end = Math.Min(products, first + productsPerTask);
            fixed (int* off = offsets)
            fixed (float* z = zeros)
                for (int product = first; product < end; product++)
                    RunBlock(w[product], (float*)xp + product * xStride, z, off, r0, r1, panel, (float*)cp + product * cStride, ldc, null, 0, false, accumulate,
                        product + 1 < end ? PanelStart(w[product + 1], panel) : null, spreadPrefetch: true);
        });
    }

    /// <summary>
    /// The product on the calling thread alone, all rows and panels, no bias: for callers that already run one task
    /// per thread (Winograd's products per chunk). offsets: rows × taps entries; with <paramref name="accumulate"/>, C is added to.
    /// </summary>
    internal static void RunSerial(PanelMatrix w, float* x, int* offsets, int rows, float* c, int ldc, bool accumulate = false)
    {
        if (LeanSmallProducts && w.NR == 64 && w.RowOffsets == null && w.Taps * w.InChannels is > 0 and <= SmallReduction && w.OutChannels % 64 == 0)
        {
            RunSmall(w, x, offsets, rows, c, ldc, accumulate);
            return;
        }
        fixed (float* zeros = ZeroRow(w.InChannels))
            for (int panel = 0; panel < w.Panels; panel++)
                RunBlock(w, x, zeros, offsets, 0, rows, panel, c, ldc, null, 0, relu: false, accumulate,
                    panel + 1 < w.Panels ? PanelStart(w, panel + 1) : null);
    }

    /// <summary>Reductions up to this length take <see cref="RunSmall"/> in <see cref="RunSerial"/>.</summary>
    private const int SmallReduction = 64;
    /// <summary>Whether <see cref="RunSerial"/> takes <see cref="RunSmall"/> where it can (on by default; off only to measure and test it).</summary>
    internal static bool LeanSmallProducts = true;

    /// <summary>
    /// <see cref="RunSerial"/> for a short reduction (at most <see cref="SmallReduction"/>) over whole 64-column
    /// panels, straight to the tile kernels: one pass, no prefetch, no staging. resnet20's 16-channel Winograd runs 36
    /// products of 16 rows, 16 channels and a few panels per chunk, each tile 16 channel steps long, for which
    /// <see cref="RunBlock"/>'s setup per tile cost about as much as the multiply-adds: the products of its forward
    /// and input-gradient passes took 1.9 thread-ms instead of 3.2 per layer.
    /// </summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunSmall(PanelMatrix w, float* x, int* offsets, int rows, float* c, int ldc, bool accumulate)
    {
        float* spareRow = stackalloc float[64 + 16];
        float* spare = (float*)(((nint)spareRow + 63) & ~(nint)63);
        new Span<float>(spare, 64).Clear();
        fixed (float* zeros = ZeroRow(w.InChannels))
        {
            var args = new TileArgs
            {
                X = x, Zeros = zeros, Taps = w.Taps, T0 = 0, T1 = w.Taps, InChannels = w.InChannels, C0 = 0, C1 = w.InChannels,
                Ldc = ldc, First = !accumulate, Last = true, Spare = spare,
            };
            for (int panel = 0; panel < w.Panels; panel++)
            {
                args.W = w.Data + (long)panel * w.PanelSize;
                args.Bias = w.Bias == null ? null : w.Bias + panel * 64;
                for (int r = 0; r < rows; r += MR)
                {
                    // Rows past the last of a short tile read and write the spare row, as in RunBlock.
                    args.Rows = Math.Min(MR, rows - r);
                    args.Offsets = offsets + (long)r * w.Taps;
                    args.C = c + (long)r * ldc + panel * 64;
                    RunTile<PackedRows>(ref args, 64);
                }
            }
        }
    }

    // Without zeroing the 4.6 KB staging area on every call: small products (Winograd's 36 per 64-tile chunk on 16
    // channels) call this thousands of times per layer. The staged rows are cleared where used, and the spare row here.
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunBlock(PanelMatrix w, float* x, float* zeros, int* offsets, int r0, int r1, int panel,
        float* c, int ldc, float* residual, int ldr, bool relu, bool accumulate, float* nextPanel, bool streaming = false, bool spreadPrefetch = false)
    {
        int nr = w.NR, ic = w.InChannels, taps = w.Taps;
        int cols = Math.Min(nr, w.OutChannels - panel * nr);
        int chunkTaps = Math.Max(1, KChunk / Math.Max(1, ic));
        // Channels per pass within a tap: all of them, or KChunk at a time when one tap alone has more (a weight
        // gradient's reduction over thousands of pixels would otherwise stream megabytes per row tile).
        int icChunk = ic > KChunk ? KChunk : ic;
        float* wPanel = w.RowOffsets == null ? w.Data + (long)panel * w.PanelSize : w.Data + (long)panel * nr;
        float* bias = w.Bias == null ? null : w.Bias + panel * nr;
        float* stage = stackalloc float[3 * MR * 64 + 16];
        float* stageC = (float*)(((nint)stage + 63) & ~(nint)63);
        float* stageR = stageC + MR * 64;
        float* spare = stageR + MR * 64;
        new Span<float>(spare, 64).Clear();
        for (int t0 = 0; t0 < taps; t0 += chunkTaps)
        for (int c0 = 0; c0 < ic; c0 += icChunk)
        {
            int t1 = Math.Min(taps, t0 + chunkTaps), c1 = Math.Min(ic, c0 + icChunk);
            bool first = t0 == 0 && c0 == 0 && !accumulate, last = t1 == taps && c1 == ic;
            // Packed panels are read in order, so the next chunk's weights are known: each row tile prefetches its share
            // into L2, and the next chunk's first tile does not wait on memory for all of it (weights read once per
            // call, as at batch 1, otherwise come from memory at a fraction of the multiply-add rate).
            // The last chunk prefetches the first chunk of the panel the caller runs next (nextPanel), if it said.
            long nextK0 = last ? 0 : (long)(t1 - 1) * ic + c1;
            long nextK1 = Math.Min((long)taps * ic, nextK0 + (long)Math.Min(taps, chunkTaps) * icChunk);
            float* prefetch = !PrefetchWeights || w.RowOffsets != null ? null : last ? nextPanel : wPanel + nextK0 * nr;
            long prefetchLines = (nextK1 - nextK0) * nr / 16, tiles = (r1 - r0 + MR - 1) / MR;
            for (int r = r0; r < r1; r += MR)
            {
                int rowsHere = Math.Min(MR, r1 - r);
                float* cTile = c + (long)r * ldc + panel * nr;
                float* rTile = residual == null ? null : residual + (long)r * ldr + panel * nr;
                var args = new TileArgs
                {
                    X = x, Zeros = zeros, Offsets = offsets + (long)r * taps, Taps = taps, T0 = t0, T1 = t1, InChannels = ic, C0 = c0, C1 = c1,
                    W = wPanel, BOffsets = w.RowOffsets, Bias = bias, C = cTile, Ldc = ldc, Residual = rTile, Ldr = ldr,
                    Rows = rowsHere, First = first, Last = last, Relu = relu, Spare = spare,
                    Streaming = streaming && last && cols == nr && rowsHere == MR,
                };
                int ahead = r + MR;   // one tile ahead (two measured level)
                if (PrefetchRows && panel == 0 && c0 == 0 && ahead + MR <= r1 && taps == 1)
                {
                    // The next tile's input rows, when they are one run (the first and last rows checked; wrong lines
                    // would only cost bandwidth): 1x1 stride-1 convolutions, Winograd's point products, NCHW products.
                    // At large batches these rows come from memory once, and the hardware prefetcher ramps up too late
                    // for six rows read a float at a time. One line per channel step from the tile's first (the first
                    // K chunk's steps at most: past 1365 channels the rest is left to the hardware). On the row-block
                    // path the task's later panels then find them in L2.
                    int nextFirst = offsets[ahead], nextLast = offsets[ahead + MR - 1];
                    if (nextFirst >= 0 && nextLast == nextFirst + (MR - 1) * ic)
                    {
                        args.PrefetchRows = x + nextFirst;
                        args.PrefetchRowLines = MR * ic / 16;
                    }
                }
                if (last && residual != null && PrefetchRows && Sse.IsSupported && ahead + MR <= r1)
                    for (int i = 0; i < MR; i++)
                    {
                        // The next tile's residual for this panel: a few lines, read once from memory in the epilogue.
                        float* next = residual + (long)(ahead + i) * ldr + panel * nr;
                        for (int line = 0; line < cols; line += 16) Sse.Prefetch1(next + line);
                    }
                if (prefetch != null)
                {
                    // This tile's share of the next chunk: lines [first, end), one per channel step of the kernel.
                    long tile = (r - r0) / MR, firstLine = tile * prefetchLines / tiles, endLine = (tile + 1) * prefetchLines / tiles;
                    args.Prefetch = prefetch + firstLine * 16;
                    args.PrefetchLines = (int)(endLine - firstLine);
                    // Where the weights stream from memory (split by panel or product, as at batch 1), one line every
                    // 2^shift steps, spread over the whole tile rather than bunched at its start (resnet18 b1 0.975x,
                    // resnet50 b1 0.978x, its 512-channel 7x7 layer alone 0.92x). Where they are reused from L2, one line per step.
                    int steps = (t1 - t0) * (c1 - c0), shift = 0;
                    while (spreadPrefetch && SpreadPrefetch && args.PrefetchLines > 0 && (args.PrefetchLines << (shift + 1)) <= steps && shift < 4) shift++;
                    args.PrefetchMask = (1 << shift) - 1;
                }
                // A tile short of rows runs in place: its missing rows read and write the spare row. A tile short of
                // columns cannot (its stores would spill into the next panel's columns) and runs on a staging copy.
                bool partial = cols < nr;
                if (partial)
                {
                    // Edge tile: run the full kernel on a staging copy and write back only the valid rows and columns.
                    for (int i = 0; i < rowsHere; i++)
                    {
                        var cRow = new Span<float>(stageC + i * nr, nr);
                        var rRow = new Span<float>(stageR + i * nr, nr);
                        cRow.Clear(); rRow.Clear();
                        if (!first) new ReadOnlySpan<float>(cTile + (long)i * ldc, cols).CopyTo(cRow);
                        if (rTile != null) new ReadOnlySpan<float>(rTile + (long)i * ldr, cols).CopyTo(rRow);
                    }
                    args.C = stageC; args.Ldc = nr;
                    args.Residual = rTile == null ? null : stageR; args.Ldr = nr;
                }
                if (w.RowOffsets == null) RunTile<PackedRows>(ref args, nr);
                else RunTile<OffsetRows>(ref args, nr);
                if (partial)
                    for (int i = 0; i < rowsHere; i++)
                        new ReadOnlySpan<float>(stageC + i * nr, cols).CopyTo(new Span<float>(cTile + (long)i * ldc, cols));
            }
        }
    }

    // The register tile for this panel width and the tile's rows: 6, 4 or 1 rows of 4 zmm on AVX-512 (a last tile
    // of at most 4 rows, or of one, would waste a 6-row tile's multiply-adds), else the 16-register tiles.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RunTile<TB>(ref TileArgs args, int nr) where TB : IRowsOfB
    {
        if (nr == 64 && args.Rows == 1) Tile1x4<Ops512, Vector512<float>, TB>(ref args);
        else if (nr == 64 && args.Rows <= 4) Tile4x4<Ops512, Vector512<float>, TB>(ref args);
        else if (nr == 64) Tile6x4<Ops512, Vector512<float>, TB>(ref args);
        else if (nr == 32) Tile6x2<Ops512, Vector512<float>, TB>(ref args);
        else if (nr == 16 && Vector256.IsHardwareAccelerated) Tile6x2<Ops256, Vector256<float>, TB>(ref args);
        else if (nr == 16) Tile6x4<Ops128, Vector128<float>, TB>(ref args);
        else Tile6x2<Ops128, Vector128<float>, TB>(ref args);
    }

    // Lines of the next chunk's weights (and of the next tile's input rows) into L2 while this tile's multiply-adds run:
    // a weight line every 2^shift steps (mask = 2^shift − 1) until none is left, and a row line every step. The
    // schedule lives in the tile kernel's locals, and packed weight rows are reached by stepping a pointer, so the
    // loop's scalar work is a few register operations: with the schedule read from TileArgs and each row's address
    // recomputed on every step (the step count spilled to the stack), every row of the benchmark ran 5–10% slower
    // (both loops in one build behind a temporary switch, bench --ab, noise floors 0.98–1.02).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchStep(ref float* weights, ref int weightLines, int mask, ref float* rows, ref int rowLines, int step)
    {
        if (!Sse.IsSupported) return;
        if (weightLines > 0 && (step & mask) == 0) { Sse.Prefetch1(weights); weights += 16; weightLines--; }
        if (rowLines > 0) { Sse.Prefetch1(rows); rows += 16; rowLines--; }
    }

    /// <summary>Where row k of the right-hand side starts: packed panels, or an offset table into unpacked data.</summary>
    internal interface IRowsOfB
    {
        static abstract float* Row(ref TileArgs a, int k, int nr);
        /// <summary>Whether row k + 1 starts NR floats after row k (the tile loops then step a pointer instead of calling <see cref="Row"/>).</summary>
        static abstract bool Contiguous { get; }
    }

    internal readonly struct PackedRows : IRowsOfB
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float* Row(ref TileArgs a, int k, int nr) => a.W + (long)k * nr;
        public static bool Contiguous => true;
    }

    internal readonly struct OffsetRows : IRowsOfB
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float* Row(ref TileArgs a, int k, int nr) => a.W + a.BOffsets[k];
        public static bool Contiguous => false;
    }

    internal struct TileArgs
    {
        public float* X, Zeros, W, Bias, C, Residual;
        /// <summary>64 floats that the rows past <see cref="Rows"/> load from and store to (their results are dropped).</summary>
        public float* Spare;
        public int* Offsets;
        /// <summary>Null for packed panels (row k at W + k·NR); else row k of B starts at W + BOffsets[k] (unpacked B).</summary>
        public int* BOffsets;
        /// <summary>Taps [T0, T1) and, within each, input channels [C0, C1) of the reduction run in this pass.</summary>
        public int Taps, T0, T1, InChannels, C0, C1, Ldc, Ldr, Rows;
        public bool First, Last, Relu;
        /// <summary>Final values go out with non-temporal stores (a full tile of a very large output).</summary>
        public bool Streaming;
        /// <summary>Lines of the next chunk's weights to prefetch (0: none), one every 2^shift channel steps (PrefetchMask = 2^shift − 1).</summary>
        public float* Prefetch;
        public int PrefetchLines, PrefetchMask;
        /// <summary>Lines of the next tile's input rows to prefetch, one per channel step (0: none).</summary>
        public float* PrefetchRows;
        public int PrefetchRowLines;
    }

    // Row i of C and of the residual, or the spare row for rows past the tile's last.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* RowOfC(ref TileArgs a, int i) => i < a.Rows ? a.C + (long)i * a.Ldc : a.Spare;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* RowOfResidual(ref TileArgs a, int i) => a.Residual == null ? null : i < a.Rows ? a.Residual + (long)i * a.Ldr : a.Spare;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row(ref TileArgs a, int r, int t)
    {
        int off = a.Offsets[(r < a.Rows ? r : 0) * a.Taps + t];
        return off >= 0 ? a.X + off : a.Zeros;
    }

    /// <summary>6 rows × 4 vectors: acc{row}{vector}. Per input channel: 4 weight loads, 6 broadcasts, 24 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile6x4<TOps, TV, TB>(ref TileArgs a) where TOps : IVectorOps<TV> where TV : unmanaged where TB : IRowsOfB
    {
        int L = TOps.Lanes, nr = 4 * L;
        TV c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53;
        if (a.First)
        {
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = c20 = c21 = c22 = c23 = TOps.Zero;
            c30 = c31 = c32 = c33 = c40 = c41 = c42 = c43 = c50 = c51 = c52 = c53 = TOps.Zero;
        }
        else
        {
            float* p = a.C;
            c00 = TOps.Load(p); c01 = TOps.Load(p + L); c02 = TOps.Load(p + 2 * L); c03 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 1);
            c10 = TOps.Load(p); c11 = TOps.Load(p + L); c12 = TOps.Load(p + 2 * L); c13 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 2);
            c20 = TOps.Load(p); c21 = TOps.Load(p + L); c22 = TOps.Load(p + 2 * L); c23 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 3);
            c30 = TOps.Load(p); c31 = TOps.Load(p + L); c32 = TOps.Load(p + 2 * L); c33 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 4);
            c40 = TOps.Load(p); c41 = TOps.Load(p + L); c42 = TOps.Load(p + 2 * L); c43 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 5);
            c50 = TOps.Load(p); c51 = TOps.Load(p + L); c52 = TOps.Load(p + 2 * L); c53 = TOps.Load(p + 3 * L);
        }
        int ic = a.InChannels, c0 = a.C0, c1 = a.C1, step = 0;
        float* pfW = a.Prefetch, pfR = a.PrefetchRows;
        int pfWLeft = a.PrefetchLines, pfMask = a.PrefetchMask, pfRLeft = a.PrefetchRowLines;
        for (int t = a.T0; t < a.T1; t++)
        {
            float* a0 = Row(ref a, 0, t), a1 = Row(ref a, 1, t), a2 = Row(ref a, 2, t), a3 = Row(ref a, 3, t), a4 = Row(ref a, 4, t), a5 = Row(ref a, 5, t);
            float* wp = TB.Row(ref a, t * ic + c0, nr);
            for (int k = c0; k < c1; k++, step++, wp += TB.Contiguous ? nr : 0)
            {
                if (!TB.Contiguous) wp = TB.Row(ref a, t * ic + k, nr);
                PrefetchStep(ref pfW, ref pfWLeft, pfMask, ref pfR, ref pfRLeft, step);
                TV b0 = TOps.Load(wp), b1 = TOps.Load(wp + L), b2 = TOps.Load(wp + 2 * L), b3 = TOps.Load(wp + 3 * L);
                TV v = TOps.Broadcast(a0[k]);
                c00 = TOps.MultiplyAdd(v, b0, c00); c01 = TOps.MultiplyAdd(v, b1, c01); c02 = TOps.MultiplyAdd(v, b2, c02); c03 = TOps.MultiplyAdd(v, b3, c03);
                v = TOps.Broadcast(a1[k]);
                c10 = TOps.MultiplyAdd(v, b0, c10); c11 = TOps.MultiplyAdd(v, b1, c11); c12 = TOps.MultiplyAdd(v, b2, c12); c13 = TOps.MultiplyAdd(v, b3, c13);
                v = TOps.Broadcast(a2[k]);
                c20 = TOps.MultiplyAdd(v, b0, c20); c21 = TOps.MultiplyAdd(v, b1, c21); c22 = TOps.MultiplyAdd(v, b2, c22); c23 = TOps.MultiplyAdd(v, b3, c23);
                v = TOps.Broadcast(a3[k]);
                c30 = TOps.MultiplyAdd(v, b0, c30); c31 = TOps.MultiplyAdd(v, b1, c31); c32 = TOps.MultiplyAdd(v, b2, c32); c33 = TOps.MultiplyAdd(v, b3, c33);
                v = TOps.Broadcast(a4[k]);
                c40 = TOps.MultiplyAdd(v, b0, c40); c41 = TOps.MultiplyAdd(v, b1, c41); c42 = TOps.MultiplyAdd(v, b2, c42); c43 = TOps.MultiplyAdd(v, b3, c43);
                v = TOps.Broadcast(a5[k]);
                c50 = TOps.MultiplyAdd(v, b0, c50); c51 = TOps.MultiplyAdd(v, b1, c51); c52 = TOps.MultiplyAdd(v, b2, c52); c53 = TOps.MultiplyAdd(v, b3, c53);
            }
        }
        StoreRow4<TOps, TV>(ref a, a.C, a.Residual, c00, c01, c02, c03);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 1), RowOfResidual(ref a, 1), c10, c11, c12, c13);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 2), RowOfResidual(ref a, 2), c20, c21, c22, c23);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 3), RowOfResidual(ref a, 3), c30, c31, c32, c33);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 4), RowOfResidual(ref a, 4), c40, c41, c42, c43);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 5), RowOfResidual(ref a, 5), c50, c51, c52, c53);
    }

    /// <summary>
    /// 4 rows × 4 vectors, for a last tile of at most 4 rows (16 output channels make tiles of 6, 6 and 4): the 6-row
    /// tile would spend a third of its multiply-adds on rows that are dropped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x4<TOps, TV, TB>(ref TileArgs a) where TOps : IVectorOps<TV> where TV : unmanaged where TB : IRowsOfB
    {
        int L = TOps.Lanes, nr = 4 * L;
        TV c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33;
        if (a.First)
        {
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = TOps.Zero;
            c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = TOps.Zero;
        }
        else
        {
            float* p = a.C;
            c00 = TOps.Load(p); c01 = TOps.Load(p + L); c02 = TOps.Load(p + 2 * L); c03 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 1);
            c10 = TOps.Load(p); c11 = TOps.Load(p + L); c12 = TOps.Load(p + 2 * L); c13 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 2);
            c20 = TOps.Load(p); c21 = TOps.Load(p + L); c22 = TOps.Load(p + 2 * L); c23 = TOps.Load(p + 3 * L); p = RowOfC(ref a, 3);
            c30 = TOps.Load(p); c31 = TOps.Load(p + L); c32 = TOps.Load(p + 2 * L); c33 = TOps.Load(p + 3 * L);
        }
        int ic = a.InChannels, c0 = a.C0, c1 = a.C1, step = 0;
        float* pfW = a.Prefetch, pfR = a.PrefetchRows;
        int pfWLeft = a.PrefetchLines, pfMask = a.PrefetchMask, pfRLeft = a.PrefetchRowLines;
        for (int t = a.T0; t < a.T1; t++)
        {
            float* a0 = Row(ref a, 0, t), a1 = Row(ref a, 1, t), a2 = Row(ref a, 2, t), a3 = Row(ref a, 3, t);
            float* wp = TB.Row(ref a, t * ic + c0, nr);
            for (int k = c0; k < c1; k++, step++, wp += TB.Contiguous ? nr : 0)
            {
                if (!TB.Contiguous) wp = TB.Row(ref a, t * ic + k, nr);
                PrefetchStep(ref pfW, ref pfWLeft, pfMask, ref pfR, ref pfRLeft, step);
                TV b0 = TOps.Load(wp), b1 = TOps.Load(wp + L), b2 = TOps.Load(wp + 2 * L), b3 = TOps.Load(wp + 3 * L);
                TV v = TOps.Broadcast(a0[k]);
                c00 = TOps.MultiplyAdd(v, b0, c00); c01 = TOps.MultiplyAdd(v, b1, c01); c02 = TOps.MultiplyAdd(v, b2, c02); c03 = TOps.MultiplyAdd(v, b3, c03);
                v = TOps.Broadcast(a1[k]);
                c10 = TOps.MultiplyAdd(v, b0, c10); c11 = TOps.MultiplyAdd(v, b1, c11); c12 = TOps.MultiplyAdd(v, b2, c12); c13 = TOps.MultiplyAdd(v, b3, c13);
                v = TOps.Broadcast(a2[k]);
                c20 = TOps.MultiplyAdd(v, b0, c20); c21 = TOps.MultiplyAdd(v, b1, c21); c22 = TOps.MultiplyAdd(v, b2, c22); c23 = TOps.MultiplyAdd(v, b3, c23);
                v = TOps.Broadcast(a3[k]);
                c30 = TOps.MultiplyAdd(v, b0, c30); c31 = TOps.MultiplyAdd(v, b1, c31); c32 = TOps.MultiplyAdd(v, b2, c32); c33 = TOps.MultiplyAdd(v, b3, c33);
            }
        }
        StoreRow4<TOps, TV>(ref a, a.C, a.Residual, c00, c01, c02, c03);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 1), RowOfResidual(ref a, 1), c10, c11, c12, c13);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 2), RowOfResidual(ref a, 2), c20, c21, c22, c23);
        StoreRow4<TOps, TV>(ref a, RowOfC(ref a, 3), RowOfResidual(ref a, 3), c30, c31, c32, c33);
    }

    /// <summary>
    /// 1 row × 4 vectors, for a last tile of one row: 49 rows (7x7 images, and the 49 Winograd tiles of 28x28 F(4x4)
    /// and 14x14 F(2x2) at batch 1) are 8 tiles of 6 and one row, for which the 4-row tile spent two thirds of a 6-row
    /// tile's multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1x4<TOps, TV, TB>(ref TileArgs a) where TOps : IVectorOps<TV> where TV : unmanaged where TB : IRowsOfB
    {
        int L = TOps.Lanes, nr = 4 * L;
        TV c00, c01, c02, c03;
        if (a.First) c00 = c01 = c02 = c03 = TOps.Zero;
        else
        {
            float* p = a.C;
            c00 = TOps.Load(p); c01 = TOps.Load(p + L); c02 = TOps.Load(p + 2 * L); c03 = TOps.Load(p + 3 * L);
        }
        int ic = a.InChannels, c0 = a.C0, c1 = a.C1, step = 0;
        float* pfW = a.Prefetch, pfR = a.PrefetchRows;
        int pfWLeft = a.PrefetchLines, pfMask = a.PrefetchMask, pfRLeft = a.PrefetchRowLines;
        for (int t = a.T0; t < a.T1; t++)
        {
            float* a0 = Row(ref a, 0, t);
            float* wp = TB.Row(ref a, t * ic + c0, nr);
            for (int k = c0; k < c1; k++, step++, wp += TB.Contiguous ? nr : 0)
            {
                if (!TB.Contiguous) wp = TB.Row(ref a, t * ic + k, nr);
                PrefetchStep(ref pfW, ref pfWLeft, pfMask, ref pfR, ref pfRLeft, step);
                TV v = TOps.Broadcast(a0[k]);
                c00 = TOps.MultiplyAdd(v, TOps.Load(wp), c00); c01 = TOps.MultiplyAdd(v, TOps.Load(wp + L), c01);
                c02 = TOps.MultiplyAdd(v, TOps.Load(wp + 2 * L), c02); c03 = TOps.MultiplyAdd(v, TOps.Load(wp + 3 * L), c03);
            }
        }
        StoreRow4<TOps, TV>(ref a, a.C, a.Residual, c00, c01, c02, c03);
    }

    /// <summary>6 rows × 2 vectors, for 16-register ISAs: 12 accumulators, 2 weight loads and 6 broadcasts per channel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile6x2<TOps, TV, TB>(ref TileArgs a) where TOps : IVectorOps<TV> where TV : unmanaged where TB : IRowsOfB
    {
        int L = TOps.Lanes, nr = 2 * L;
        TV c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (a.First)
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = TOps.Zero;
        else
        {
            float* p = a.C;
            c00 = TOps.Load(p); c01 = TOps.Load(p + L); p = RowOfC(ref a, 1);
            c10 = TOps.Load(p); c11 = TOps.Load(p + L); p = RowOfC(ref a, 2);
            c20 = TOps.Load(p); c21 = TOps.Load(p + L); p = RowOfC(ref a, 3);
            c30 = TOps.Load(p); c31 = TOps.Load(p + L); p = RowOfC(ref a, 4);
            c40 = TOps.Load(p); c41 = TOps.Load(p + L); p = RowOfC(ref a, 5);
            c50 = TOps.Load(p); c51 = TOps.Load(p + L);
        }
        int ic = a.InChannels, c0 = a.C0, c1 = a.C1, step = 0;
        float* pfW = a.Prefetch, pfR = a.PrefetchRows;
        int pfWLeft = a.PrefetchLines, pfMask = a.PrefetchMask, pfRLeft = a.PrefetchRowLines;
        for (int t = a.T0; t < a.T1; t++)
        {
            float* a0 = Row(ref a, 0, t), a1 = Row(ref a, 1, t), a2 = Row(ref a, 2, t), a3 = Row(ref a, 3, t), a4 = Row(ref a, 4, t), a5 = Row(ref a, 5, t);
            float* wp = TB.Row(ref a, t * ic + c0, nr);
            for (int k = c0; k < c1; k++, step++, wp += TB.Contiguous ? nr : 0)
            {
                if (!TB.Contiguous) wp = TB.Row(ref a, t * ic + k, nr);
                PrefetchStep(ref pfW, ref pfWLeft, pfMask, ref pfR, ref pfRLeft, step);
                TV b0 = TOps.Load(wp), b1 = TOps.Load(wp + L);
                TV v = TOps.Broadcast(a0[k]); c00 = TOps.MultiplyAdd(v, b0, c00); c01 = TOps.MultiplyAdd(v, b1, c01);
                v = TOps.Broadcast(a1[k]); c10 = TOps.MultiplyAdd(v, b0, c10); c11 = TOps.MultiplyAdd(v, b1, c11);
                v = TOps.Broadcast(a2[k]); c20 = TOps.MultiplyAdd(v, b0, c20); c21 = TOps.MultiplyAdd(v, b1, c21);
                v = TOps.Broadcast(a3[k]); c30 = TOps.MultiplyAdd(v, b0, c30); c31 = TOps.MultiplyAdd(v, b1, c31);
                v = TOps.Broadcast(a4[k]); c40 = TOps.MultiplyAdd(v, b0, c40); c41 = TOps.MultiplyAdd(v, b1, c41);
                v = TOps.Broadcast(a5[k]); c50 = TOps.MultiplyAdd(v, b0, c50); c51 = TOps.MultiplyAdd(v, b1, c51);
            }
        }
        StoreRow2<TOps, TV>(ref a, a.C, a.Residual, c00, c01);
        StoreRow2<TOps, TV>(ref a, RowOfC(ref a, 1), RowOfResidual(ref a, 1), c10, c11);
        StoreRow2<TOps, TV>(ref a, RowOfC(ref a, 2), RowOfResidual(ref a, 2), c20, c21);
        StoreRow2<TOps, TV>(ref a, RowOfC(ref a, 3), RowOfResidual(ref a, 3), c30, c31);
        StoreRow2<TOps, TV>(ref a, RowOfC(ref a, 4), RowOfResidual(ref a, 4), c40, c41);
        StoreRow2<TOps, TV>(ref a, RowOfC(ref a, 5), RowOfResidual(ref a, 5), c50, c51);
    }

    // Epilogue on the last K chunk: + bias, + residual, ReLU. Earlier chunks store the raw partial sums.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow4<TOps, TV>(ref TileArgs a, float* c, float* r, TV v0, TV v1, TV v2, TV v3) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int L = TOps.Lanes;
        if (a.Last)
        {
            if (a.Bias != null)
            {
                v0 = TOps.Add(v0, TOps.Load(a.Bias)); v1 = TOps.Add(v1, TOps.Load(a.Bias + L));
                v2 = TOps.Add(v2, TOps.Load(a.Bias + 2 * L)); v3 = TOps.Add(v3, TOps.Load(a.Bias + 3 * L));
            }
            if (r != null)
            {
                v0 = TOps.Add(v0, TOps.Load(r)); v1 = TOps.Add(v1, TOps.Load(r + L));
                v2 = TOps.Add(v2, TOps.Load(r + 2 * L)); v3 = TOps.Add(v3, TOps.Load(r + 3 * L));
            }
            if (a.Relu)
            {
                v0 = TOps.Max(v0, TOps.Zero); v1 = TOps.Max(v1, TOps.Zero); v2 = TOps.Max(v2, TOps.Zero); v3 = TOps.Max(v3, TOps.Zero);
            }
        }
        if (a.Streaming)
        {
            TOps.StoreStreaming(c, v0); TOps.StoreStreaming(c + L, v1); TOps.StoreStreaming(c + 2 * L, v2); TOps.StoreStreaming(c + 3 * L, v3);
            return;
        }
        TOps.Store(c, v0); TOps.Store(c + L, v1); TOps.Store(c + 2 * L, v2); TOps.Store(c + 3 * L, v3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow2<TOps, TV>(ref TileArgs a, float* c, float* r, TV v0, TV v1) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int L = TOps.Lanes;
        if (a.Last)
        {
            if (a.Bias != null) { v0 = TOps.Add(v0, TOps.Load(a.Bias)); v1 = TOps.Add(v1, TOps.Load(a.Bias + L)); }
            if (r != null) { v0 = TOps.Add(v0, TOps.Load(r)); v1 = TOps.Add(v1, TOps.Load(r + L)); }
            if (a.Relu) { v0 = TOps.Max(v0, TOps.Zero); v1 = TOps.Max(v1, TOps.Zero); }
        }
        TOps.Store(c, v0); TOps.Store(c + L, v1);
    }

    private static float[] _zeros = new float[64];
    private static float[] ZeroRow(int length)
    {
        var z = _zeros;
        if (z.Length < length) _zeros = z = GC.AllocateArray<float>(length, pinned: true);
        return z;
    }
}

/// <summary>
/// A right-hand side packed in panels of NR columns, each [tap][input channel][NR], with a per-column bias of
/// Panels·NR floats or null for none. Packed weights are one; the training convolutions pack im2col matrices into the same shape.
/// </summary>
internal readonly unsafe struct PanelMatrix(float* data, float* bias, int columns, int taps, int inChannels, int* rowOffsets = null, int nr = 0)
{
    /// <summary>
    /// Panel width: the machine's (64, 16 or 8) by default. Narrower panels for products with few columns (a 64-wide
    /// panel over 16 columns computes 48 columns of zeros): 32 selects the 6x32 Vector512 tile (AVX-512 only), 16 the
    /// 6x16 Vector256 tile (or 6x16 Vector128 without AVX2).
    /// </summary>
    public int NR { get; } = nr == 0 ? PackedGemm.NR : nr;

    /// <summary>
    /// Null for packed panels. Otherwise B is not packed: row k (of taps·IC) starts at Data + RowOffsets[k] and the
    /// panel's columns follow contiguously, so a shifted view of a padded image serves as B without an im2col copy.
    /// Every row must then be readable NR floats past its last column (the caller pads the buffer).
    /// </summary>
    public int* RowOffsets { get; } = rowOffsets;
    public float* Data { get; } = data;
    public float* Bias { get; } = bias;
    public int Columns { get; } = columns;
    public int OutChannels => Columns;
    public int Taps { get; } = taps;
    public int InChannels { get; } = inChannels;
    public int Panels => (Columns + NR - 1) / NR;
    public int PanelSize => Taps * InChannels * NR;
}

/// <summary>A pinned, 64-byte-aligned float buffer with a stable pointer, for packed weights and activations.</summary>
public sealed unsafe class AlignedBuffer
{
    private readonly float[] _array;
    private readonly int _offset;

    public AlignedBuffer(int length)
    {
        _array = GC.AllocateArray<float>(length + 16, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref _array[0]);
        _offset = (int)(((64 - (address & 63)) & 63) / sizeof(float));
        Length = length;
    }

    public int Length { get; }
    public float* Pointer => (float*)Unsafe.AsPointer(ref _array[_offset]);
    public Span<float> Span => new(_array, _offset, Length);
}
