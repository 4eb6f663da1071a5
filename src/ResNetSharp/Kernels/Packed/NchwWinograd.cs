using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// Winograd F(4x4,3x3) and F(2x2,3x3) for the training path's stride-1, padding-1 3x3 convolutions on NCHW tensors:
/// the forward pass, and dx as the forward pass of dy with the flipped, transposed weights. Each output tile is
/// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A over its input tile d (6x6 or 4x4); summed over input channels, the element-wise
/// products are 36 or 16 matrix products M_p (OC, tiles) = U_p (OC, IC) · V_p (IC, tiles) on the packed
/// micro-kernel: per channel pair, 36 multiply-adds for 16 output pixels or 16 for 4, where the direct convolution
/// needs 144 or 36 (4x or 2.25x fewer).
/// <para>
/// The transforms run on vectors of 16 tiles. A tile's input columns are T·tx − 1 + 0..T+1, so the columns of 16
/// tiles are the residues of contiguous reads (one or two rounds of AVX-512 two-source even/odd permutes), and the
/// outputs go back by interleaving. The input is read in place, with masked loads for the padding (a padded copy
/// cost a fifth of the time). Tiles are numbered in "slots": a tile row takes 4, 8 or a multiple of 16 slots (the
/// tiles past the image are computed and dropped), so that a 16-lane group is one piece of a tile row or 2 or 4
/// whole rows. Work goes over the threads in blocks of images; within a block the transformed input and the
/// products are made in chunks that stay in L2.
/// </para>
/// Vector512 only: elsewhere <see cref="Supports"/> is false and the direct path runs.
/// </summary>
public static unsafe class NchwWinograd
{
    private const int ChunkBytes = 768 * 1024;   // transformed input and products of one chunk (V and M), under L2
    private const int MinLanesPerTask = 256;

    [ThreadStatic] private static AlignedBuffer? _transformed, _products;

    /// <summary>Whether this machine and geometry can take the path: 3x3, stride 1, padding 1, with AVX-512.</summary>
    public static bool Supports(in ConvGeometry g) =>
        PackedGemm.NR == 64 && Avx512F.IsSupported && g.KernelH == 3 && g.KernelW == 3 && g.Stride == 1 && g.Padding == 1;

    /// <summary>
    /// The tile for a geometry: F(4x4,3x3) (36 products per 16 output pixels, 4x fewer multiplies than direct) where
    /// a tile row has at least three tiles, else F(2x2,3x3) (16 per 4 pixels, 2.25x fewer), whose 2x2 tiles waste
    /// less of a small image.
    /// </summary>
    public static int TileFor(in ConvGeometry g) => g.OutWidth > 8 ? 4 : 2;

    /// <summary>Products (points) of F(tile x tile, 3x3): 16 or 36.</summary>
    public static int PointsFor(int tile) => (tile + 2) * (tile + 2);

    /// <summary>Floats of the transformed weights: points·(OC·IC + 16), see <see cref="WeightPointStride"/>.</summary>
    public static long WeightSize(int outChannels, int inChannels, int tile = 2) => PointsFor(tile) * WeightPointStride(outChannels, inChannels);

    /// <summary>
    /// Floats from one point's U_p to the next: OC·IC plus a cache line. Without the line, the stride of a layer with
    /// channels in powers of two is a multiple of 4 KB (1 MB at 512 channels), and the 16 or 36 vectors that
    /// <see cref="TransformWeights"/> stores for one block row fall in one L1 set (and, at 1 MB, one L2 set).
    /// The transform runs twice per training step for each Winograd layer (forward and dx): a few percent of resnet18's
    /// step, below what a whole step resolves on this machine, so it is measured on the kernel alone:
    /// `bench/run.sh --ab NchwWinograd.PadWeightPoints=false,true --ab-work winograd-weights:256,4 --rounds 300`
    /// gave 0.83x (noise floor 1.00); 512 channels F(2x2) 0.95x, 128 F(4x4) 0.92x, 64 level.
    /// </summary>
    public static long WeightPointStride(int outChannels, int inChannels) => (long)outChannels * inChannels + (PadWeightPoints ? 16 : 0);

    /// <summary>The cache line of <see cref="WeightPointStride"/> (on by default; off only to measure it).</summary>
    internal static bool PadWeightPoints = true;

    /// <summary>
    /// u[p][o][i] = (G g Gᵀ)[p / window][p mod window] for g = w[o, i] (3x3), at u + p·WeightPointStride + o·IC + i:
    /// the left operand of the products, rows of IC contiguous values. G for F(2,3): [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]; for F(4,3): the points 0, −1, 1, −2
    /// (as ½), 2 and ∞, as in <see cref="Winograd"/>.
    /// <para>
    /// With <paramref name="forInputGradient"/>, the weights of dx instead, the convolution of dy with the flipped,
    /// transposed kernel w'[i, o] = w[o, i] rotated by 180°: u[p][i][o], rows of OC values, read from w with the
    /// taps reversed (no flipped copy).
    /// </para>
    /// </summary>
    public static void TransformWeights(float* w, int outChannels, int inChannels, float* u, int tile = 2, bool forInputGradient = false)
    {
        float[] gm = GFor(tile);
        int window = tile + 2;
        long plane = (long)outChannels * inChannels, uPoint = WeightPointStride(outChannels, inChannels);
        int rows = forInputGradient ? inChannels : outChannels, columns = forInputGradient ? outChannels : inChannels;
        nint wp = (nint)w, up = (nint)u;
        // Blocks of 16 rows × 16 columns: a block's pairs are 16 runs of 16·9 contiguous weights (one per output
        // channel, over 16 input channels) in either direction, so w is read in order; the taps are transposed into
        // vectors over the block's columns (zero past the last).
        WorkerPool.For((rows + 15) / 16, block =>
        {
            int r0 = block * 16, rowCount = Math.Min(16, rows - r0);
            float* byTap = stackalloc float[16 * 9 * 16];   // [row in block][tap][column in block]
            float* reversed = stackalloc float[9 * 16];
            float** columnTaps = stackalloc float*[16];
            float* coef = stackalloc float[18];
            for (int q = 0; q < gm.Length; q++) coef[q] = gm[q];
            var g = stackalloc Vector512<float>[6 * 3];
            for (int c0 = 0; c0 < columns; c0 += 16)
            {
                int count = Math.Min(16, columns - c0);
                if (count < 16 || rowCount < 16) new Span<float>(byTap, 16 * 9 * 16).Clear();
                // A whole block away from w's end: each row's 16 columns × 9 taps as a 16x16 register transpose of
                // 16-float reads at the columns' first taps (the 7 floats past a column's taps are read and dropped).
                long lastRead = forInputGradient ? ((long)(c0 + 15) * inChannels + r0 + rowCount - 1) * 9 + 16
                    : ((long)(r0 + rowCount - 1) * inChannels + c0 + 15) * 9 + 16;
                if (count == 16 && lastRead <= plane * 9)
                {
                    for (int q = 0; q < rowCount; q++)
                    {
                        for (int col = 0; col < 16; col++)
                            columnTaps[col] = forInputGradient ? (float*)wp + ((long)(c0 + col) * inChannels + r0 + q) * 9
                                : (float*)wp + ((long)(r0 + q) * inChannels + c0 + col) * 9;
                        float* kt = byTap + q * 9 * 16;
                        if (!forInputGradient) Transposes.Transpose16(columnTaps, kt, 16, 9);
                        else
                        {
                            Transposes.Transpose16(columnTaps, reversed, 16, 9);
                            for (int t = 0; t < 9; t++) Vector512.Load(reversed + (8 - t) * 16).Store(kt + t * 16);
                        }
                    }
                }
                else if (!forInputGradient)
                    for (int q = 0; q < rowCount; q++)   // output channel r0 + q, input channels c0 + col
                    {
                        float* k = (float*)wp + ((long)(r0 + q) * inChannels + c0) * 9;
                        for (int col = 0; col < count; col++)
                            for (int t = 0; t < 9; t++) byTap[(q * 9 + t) * 16 + col] = k[col * 9 + t];
                    }
                else
                    for (int col = 0; col < count; col++)   // output channel c0 + col, input channels r0 + q, taps reversed
                    {
                        float* k = (float*)wp + ((long)(c0 + col) * inChannels + r0) * 9;
                        for (int q = 0; q < rowCount; q++)
                            for (int t = 0; t < 9; t++) byTap[(q * 9 + t) * 16 + col] = k[q * 9 + 8 - t];
                    }
                for (int q = 0; q < rowCount; q++)
                {
                    float* kt = byTap + q * 9 * 16;
                    for (int a = 0; a < window; a++)   // g (window x 3) = G·k
                        for (int j = 0; j < 3; j++)
                            g[a * 3 + j] = Vector512.Load(kt + j * 16) * coef[a * 3] + Vector512.Load(kt + (3 + j) * 16) * coef[a * 3 + 1]
                                + Vector512.Load(kt + (6 + j) * 16) * coef[a * 3 + 2];
                    float* dst = (float*)up + (long)(r0 + q) * columns + c0;
                    for (int a = 0; a < window; a++)   // row a of g·Gᵀ
                        for (int b = 0; b < window; b++)
                            StorePartial(dst + (a * window + b) * uPoint, g[a * 3] * coef[b * 3] + g[a * 3 + 1] * coef[b * 3 + 1] + g[a * 3 + 2] * coef[b * 3 + 2], count);
                }
            }
        });
    }

    // G (window x 3, row-major) of F(2,3) and F(4,3): the weight transform's, and transposed, the weight gradient's output.
    private static readonly float[] G2 = [1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, -0.5f, 0.5f, 0, 0, 1];
    private static readonly float[] G4 = [1 / 4f, 0, 0, -1 / 6f, -1 / 6f, -1 / 6f, -1 / 6f, 1 / 6f, -1 / 6f, 1 / 24f, 1 / 12f, 1 / 6f, 1 / 24f, -1 / 12f, 1 / 6f, 0, 0, 1];

    private static float[] GFor(int tile) => tile switch
    {
        2 => G2,
        4 => G4,
        _ => throw new ArgumentOutOfRangeException(nameof(tile), tile, "Winograd tiles are 2 or 4"),
    };

    /// <summary>How a geometry's tiles are numbered (see the class remarks).</summary>
    private readonly struct Layout
    {
        public Layout(in ConvGeometry g, int tile)
        {
            int tileRows = (g.OutHeight + tile - 1) / tile, tileCols = (g.OutWidth + tile - 1) / tile;
            Slots = tileCols <= 4 ? 4 : tileCols <= 8 ? 8 : (tileCols + 15) / 16 * 16;
            int rowsPerGroup = Slots >= 16 ? 1 : 16 / Slots;   // tile rows in one 16-lane group
            Lanes = (tileRows + rowsPerGroup - 1) / rowsPerGroup * rowsPerGroup * Slots;
        }

        /// <summary>Slots per tile row: 4, 8 or a multiple of 16.</summary>
        public int Slots { get; }

        /// <summary>The image, tile row and first tile column of the 16-lane group starting at a lane of a block.</summary>
        public (int Image, int TileRow, int FirstTile) Locate(int lane) => (lane / Lanes, lane % Lanes / Slots, lane % Lanes % Slots);
        /// <summary>Slots per image, a multiple of 16.</summary>
        public int Lanes { get; }
    }

    /// <summary>
    /// y (N, OC, H, W) = conv3x3(x) (+ bias), with u from <see cref="TransformWeights"/> for the same tile (2 or 4;
    /// <see cref="TileFor"/> picks one).
    /// </summary>
    public static void Forward(in ConvGeometry g, int batch, float* x, float* u, float* bias, float* y, int tile = 2)
    {
        if (!Supports(g)) throw new NotSupportedException($"Winograd on NCHW needs AVX-512 and a 3x3 stride-1 padding-1 convolution, not {g}");
        if (tile != 2 && tile != 4) throw new ArgumentOutOfRangeException(nameof(tile), tile, "Winograd tiles are 2 or 4");
        if (tile == 4 && g.OutWidth <= 4) throw new ArgumentException($"F(4x4,3x3) needs images wider than 4 pixels, not {g.OutWidth}");
        var layout = new Layout(g, tile);
        int points = PointsFor(tile);
        var geometry = g;
        int ic = g.InChannels, oc = g.OutChannels;
        int perTask = Math.Max(1, Math.Min((MinLanesPerTask + layout.Lanes - 1) / layout.Lanes, (batch + Engine.Threads - 1) / Engine.Threads));
        int tasks = (batch + perTask - 1) / perTask;
        int chunkLanes = Math.Max(64, ChunkBytes / (points * (ic + oc) * sizeof(float)) / 64 * 64);
        nint xp = (nint)x, up = (nint)u, bp = (nint)bias, yp = (nint)y;
        int[] rowOffsets = NchwConv.RowOffsets(oc, ic);
        WorkerPool.For(tasks, task =>
        {
            int n0 = task * perTask, images = Math.Min(perTask, batch - n0);
            int lanes = images * layout.Lanes, total = (lanes + 63) / 64 * 64;
            int chunk = Math.Min(chunkLanes, total);
            var v = Scratch(ref _transformed, points * PointStride(ic, chunk));
            var m = Scratch(ref _products, points * PointStride(oc, chunk));
            fixed (int* offsets = rowOffsets)
                for (int c0 = 0; c0 < total; c0 += chunk)
                {
                    int n = Math.Min(chunk, total - c0);
                    if (tile == 2) InputTransform(geometry, layout, (float*)xp + (long)n0 * geometry.InImage, c0, n, lanes, v.Pointer);
                    else InputTransform4(geometry, layout, (float*)xp + (long)n0 * geometry.InImage, c0, n, lanes, v.Pointer);
                    for (int p = 0; p < points; p++)
                        PackedGemm.RunSerial(new PanelMatrix(v.Pointer + p * PointStride(ic, n), null, n, 1, ic), (float*)up + p * WeightPointStride(oc, ic), offsets,
                            oc, m.Pointer + p * PointStride(oc, n), n);
                    if (tile == 2) OutputTransform(geometry, layout, m.Pointer, c0, n, lanes, (float*)bp, (float*)yp + (long)n0 * geometry.OutImage);
                    else OutputTransform4(geometry, layout, m.Pointer, c0, n, lanes, (float*)bp, (float*)yp + (long)n0 * geometry.OutImage);
                }
        });
    }

    /// <summary>
    /// Floats from one point's V_p or M_p to the next: channels × lanes, plus a cache line. Without it the stride is a
    /// multiple of 4 KB, and a tile's 36 points (written together by the input transform, read together by the output
    /// transform) fall in one L1 set. Toggled at run time on one model, pairs in alternating order: resnet20's training
    /// step 0.985x (1/1.042 with the roles swapped).
    /// </summary>
    private static long PointStride(int channels, int count) => (long)channels * count + 16;

    private const int GradientChunkBytes = 4 << 20;    // V and Ŷ of one shared weight-gradient chunk, at least
    private const int PrivateChunkBytes = 1 << 20;     // V and Ŷ of one thread's chunk, at most (with its M, in L2)
    // M up to this size is summed per thread. Measured on resnet18's training step at batch 16: 4 MB (the 128-channel
    // layers per thread too) was 1.02x the step time of 1 MB.
    private const long PrivateProductBytes = 1 << 20;

    [ThreadStatic] private static AlignedBuffer? _gradientInputs, _gradientOutputs, _gradientProducts;

    /// <summary>
    /// dw (OC, IC, 3, 3) += Σ_n the correlation of dy_n with x_n (the 3x3 stride-1 padding-1 weight gradient), by
    /// Winograd F(tile x tile, 3x3) transposed: the forward's y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A gives, for each tile,
    /// ∂L/∂g = Gᵀ[(A dY Aᵀ) ⊙ (Bᵀ d B)]G. Summed over tiles, the element-wise products are one matrix product per
    /// point, M_p (IC, OC) = Σ_tiles V_p (IC, tiles) · Ŷ_p (tiles, OC), with the tiles as the reduction: 16 or 36
    /// multiply-adds per channel pair and tile where the direct sum needs 36 or 144. V is the forward's input
    /// transform; Ŷ = A dY Aᵀ is made here, 16 channels by 16 tiles at a time, and transposed into panels of output
    /// channels. Gᵀ M G is applied once at the end.
    /// <para>
    /// Two ways over the threads. Where M is small (up to 64 channels), each thread takes a share of the tiles and
    /// sums its own M in chunks that stay in its L2 with it, and the output transform adds the threads' M. Where it is
    /// large (16.8 MB for 512 channels), M is one, the threads make each chunk's V and Ŷ together, and its products
    /// are split by point and panel.
    /// </para>
    /// </summary>
    public static void WeightGradient(in ConvGeometry g, int batch, float* x, float* dy, float* dw, int tile = 2)
    {
        if (!Supports(g)) throw new NotSupportedException($"Winograd on NCHW needs AVX-512 and a 3x3 stride-1 padding-1 convolution, not {g}");
        if (tile != 2 && tile != 4) throw new ArgumentOutOfRangeException(nameof(tile), tile, "Winograd tiles are 2 or 4");
        if (tile == 4 && g.OutWidth <= 4) throw new ArgumentException($"F(4x4,3x3) needs images wider than 4 pixels, not {g.OutWidth}");
        var layout = new Layout(g, tile);
        var geometry = g;
        int points = PointsFor(tile), ic = g.InChannels, oc = g.OutChannels;
        // Output channels in panels as narrow as they allow: 16 and 32 channels take the 6x16 and 6x32 tiles.
        int nr = oc <= 16 ? 16 : oc <= 32 ? 32 : 64;
        int ocPanels = (oc + nr - 1) / nr, ldm = ocPanels * nr;
        int valid = checked(batch * layout.Lanes), lanePanels = (valid + 63) / 64;
        // M_p is padded by a line: at 1 MB per point (512 channels) the points' rows would fall in one cache set.
        long mPoint = (long)ic * ldm + 16, mSize = points * mPoint;
        long productBytes = mSize * sizeof(float), panelBytes = (long)points * (ic + ldm) * 64 * sizeof(float);
        nint xp = (nint)x, dyp = (nint)dy;
        if (productBytes <= PrivateProductBytes)
        {
            int parts = Math.Min(Engine.Threads, lanePanels);
            int chunkPanels = (int)Math.Clamp(PrivateChunkBytes / panelBytes, 1, lanePanels);
            var partSums = Scratch(ref _gradientProducts, parts * mSize);
            nint mp = (nint)partSums.Pointer;
            // The row tables of a full chunk and of each part's short last one, made once.
            var tables = new Dictionary<int, int[]>();
            for (int part = 0; part < parts; part++)
            {
                int length = (part + 1) * lanePanels / parts - part * lanePanels / parts;
                foreach (int panels in new[] { Math.Min(chunkPanels, length), length % chunkPanels })
                    if (panels > 0 && !tables.ContainsKey(panels)) tables[panels] = ChunkRowOffsets(ic, panels);
            }
            WorkerPool.For(parts, part =>
            {
                int begin = part * lanePanels / parts, end = (part + 1) * lanePanels / parts;
                var v = Scratch(ref _gradientInputs, points * PointStride(geometry.InChannels, chunkPanels * 64));
                var yHat = Scratch(ref _gradientOutputs, (long)chunkPanels * points * ldm * 64);
                for (int p0 = begin; p0 < end; p0 += chunkPanels)
                {
                    int panels = Math.Min(chunkPanels, end - p0), count = panels * 64;
                    long yPoint = (long)ocPanels * count * nr;
                    ChunkTransforms(geometry, layout, tile, (float*)xp, (float*)dyp, p0 * 64, count, 0, count, valid, v.Pointer, yHat.Pointer, yPoint, nr);
                    fixed (int* off = tables[panels])
                        for (int p = 0; p < points; p++)
                            PackedGemm.RunSerial(new PanelMatrix(yHat.Pointer + p * yPoint, null, geometry.OutChannels, panels, 64, null, nr),
                                v.Pointer + p * PointStride(geometry.InChannels, count), off, geometry.InChannels, (float*)mp + part * mSize + p * mPoint, ldm,
                                accumulate: p0 > begin);
                }
            });
            GradientOutputTransform(geometry, tile, partSums.Pointer, parts, mSize, mPoint, ldm, dw);
            return;
        }
        {
            // A chunk's V and Ŷ: at least GradientChunkBytes, and at least twice M, which every chunk reads and writes.
            int chunkPanels = (int)Math.Clamp(Math.Max(GradientChunkBytes, 2 * productBytes) / panelBytes, 1, lanePanels);
            var v = Scratch(ref _gradientInputs, points * PointStride(ic, chunkPanels * 64));
            var yHat = Scratch(ref _gradientOutputs, (long)chunkPanels * points * ldm * 64);
            var m = Scratch(ref _gradientProducts, mSize);
            nint vp = (nint)v.Pointer, yp = (nint)yHat.Pointer;
            var right = new PanelMatrix[points];
            int[] fullTable = ChunkRowOffsets(ic, chunkPanels);
            for (int p0 = 0; p0 < lanePanels; p0 += chunkPanels)
            {
                int panels = Math.Min(chunkPanels, lanePanels - p0), count = panels * 64, first = p0 * 64;
                long yPoint = (long)ocPanels * count * nr;
                int groups = count / 16, tasks = Math.Min(groups, 4 * Engine.Threads);
                WorkerPool.For(tasks, task => ChunkTransforms(geometry, layout, tile, (float*)xp, (float*)dyp, first, count,
                    task * groups / tasks * 16, (task + 1) * groups / tasks * 16, valid, (float*)vp, (float*)yp, yPoint, nr));
                for (int p = 0; p < points; p++) right[p] = new PanelMatrix((float*)yp + p * yPoint, null, oc, panels, 64, null, nr);
                PackedGemm.RunBatched(right, (float*)vp, PointStride(ic, count), panels == chunkPanels ? fullTable : ChunkRowOffsets(ic, panels), ic,
                    m.Pointer, mPoint, ldm, accumulate: p0 > 0);
            }
            GradientOutputTransform(geometry, tile, m.Pointer, 1, 0, mPoint, ldm, dw);
        }
    }

    /// <summary>
    /// V (the forward's chunk layout: V_p at v + p·PointStride(IC, count), [lane panel][channel][64]) and Ŷ (Ŷ_p at yHat + p·yPoint,
    /// [output-channel panel][lane][nr]) of the chunk's lanes [first + from, first + to).
    /// </summary>
    private static void ChunkTransforms(in ConvGeometry g, in Layout layout, int tile, float* x, float* dy, int first, int count, int from, int to,
        int valid, float* v, float* yHat, long yPoint, int nr)
    {
        if (tile == 2) InputTransform(g, layout, x, first, count, valid, v, from, to);
        else InputTransform4(g, layout, x, first, count, valid, v, from, to);
        GradientTransform(g, layout, tile, dy, first, from, to, valid, yHat, yPoint, (long)count * nr, nr);
    }

    // Row c of V_p at "tap" j (the chunk's lane panel j): j·IC·64 + c·64 from V_p.
    private static int[] ChunkRowOffsets(int channels, int panels)
    {
        var offsets = new int[channels * panels];
        for (int r = 0; r < channels; r++)
            for (int j = 0; j < panels; j++) offsets[r * panels + j] = j * channels * 64 + r * 64;
        return offsets;
    }

    /// <summary>
    /// Ŷ = A dY Aᵀ for lanes [first + from, first + to) of a chunk starting at lane <paramref name="first"/> (dY: the
    /// tile's outputs of dy, zero outside the image; lanes past <paramref name="valid"/> zero), written as rows of output
    /// channels: point p, lane l of the chunk and channel o at yHat + p·pointStride + (o / nr)·panelStride + l·nr + o mod nr. A is the transpose of the forward
    /// output transform's Aᵀ; dY is read with the output transform's store pattern, de-interleaved.
    /// </summary>
    [SkipLocalsInit]   // the staging arrays are written before they are read
    private static void GradientTransform(in ConvGeometry g, in Layout layout, int tile, float* dy, int first, int from, int to, int valid, float* yHat,
        long pointStride, long panelStride, int nr)
    {
        int oc = g.OutChannels, oh = g.OutHeight, ow = g.OutWidth, slots = layout.Slots, window = tile + 2, points = window * window;
        Vector512<int> evens = Deinterleave.Evens, odds = Deinterleave.Odds;
        var stage = stackalloc Vector512<float>[16 * 36];   // [channel in block][point], 16 tiles each
        var d = stackalloc Vector512<float>[16];             // the tile's dY, [row][column]
        var e = stackalloc Vector512<float>[36];             // A·dY, [point row][column]
        var rows = stackalloc float*[16];
        var masks = stackalloc Vector512<float>[4];
        var offsets = stackalloc int[4];
        for (int local = from; local < to; local += 16)
        {
            int lane = first + local;
            float* block = yHat + (long)local * nr;   // + p·pointStride + panel·panelStride
            if (lane >= valid)
            {
                for (int p = 0; p < points; p++)
                    for (int panel = 0; panel * nr < oc; panel++)
                        new Span<float>(block + p * pointStride + panel * panelStride, 16 * nr).Clear();
                continue;
            }
            var (image, ty, tx0) = layout.Locate(lane);
            int col = slots >= 16 ? tile * tx0 : 0, tileRows = slots >= 16 ? 1 : 16 / slots;
            // The four 16-value reads of a row of dY values (tile·16 of them: two reads for F(2x2), four for F(4x4)):
            // one output row (16 slots), two rows' halves (8) or four rows' quarters (4), as the output transform stores them.
            int reads = tile == 2 ? 2 : 4;
            for (int k = 0; k < reads; k++)
            {
                offsets[k] = slots >= 16 ? 16 * k : slots == 8 && tile == 4 ? 16 * (k % 2) : 0;
                masks[k] = ColumnMask(col + offsets[k], ow);
            }
            for (int o0 = 0; o0 < oc; o0 += 16)
            {
                int count = Math.Min(16, oc - o0);
                for (int o = 0; o < count; o++)
                {
                    float* plane = dy + ((long)image * oc + o0 + o) * oh * ow;
                    for (int i = 0; i < tile; i++)
                    {
                        for (int k = 0; k < tileRows; k++)
                        {
                            int row = tile * (ty + k) + i;
                            rows[k] = row < oh ? plane + (long)row * ow + col : null;
                        }
                        if (tile == 2)
                        {
                            Vector512<float> lo, hi;
                            if (slots >= 16) { lo = Load(rows[0], 0, masks[0]); hi = Load(rows[0], 16, masks[1]); }
                            else if (slots == 8) { lo = Load(rows[0], 0, masks[0]); hi = Load(rows[1], 0, masks[0]); }
                            else
                            {
                                var q = masks[0].GetLower();
                                lo = Vector512.Create(Load(rows[0], 0, q), Load(rows[1], 0, q)); hi = Vector512.Create(Load(rows[2], 0, q), Load(rows[3], 0, q));
                            }
                            d[i * 2] = Avx512F.PermuteVar16x32x2(lo, evens, hi);
                            d[i * 2 + 1] = Avx512F.PermuteVar16x32x2(lo, odds, hi);
                        }
                        else
                            ReadResidues4(rows, slots, offsets, masks, out d[i * 4], out d[i * 4 + 1], out d[i * 4 + 2], out d[i * 4 + 3]);
                    }
                    // e = A·dY (window x tile), then each row of e times Aᵀ.
                    Vector512<float>* y = stage + o * 36;
                    if (tile == 2)
                    {
                        for (int j = 0; j < 2; j++) GradientRows2(d[j], d[2 + j], e + j, 2);
                        for (int a = 0; a < 4; a++) GradientRows2(e[a * 2], e[a * 2 + 1], y + a * 4, 1);
                    }
                    else
                    {
                        for (int j = 0; j < 4; j++) GradientRows4(d[j], d[4 + j], d[8 + j], d[12 + j], e + j, 4);
                        for (int a = 0; a < 6; a++) GradientRows4(e[a * 4], e[a * 4 + 1], e[a * 4 + 2], e[a * 4 + 3], y + a * 6, 1);
                    }
                }
                // Channels o0.. × 16 tiles → 16 tile rows of channels, per point.
                float* dst = block + (o0 / nr) * panelStride + o0 % nr;
                for (int p = 0; p < points; p++)
                {
                    for (int o = 0; o < 16; o++) rows[o] = o < count ? (float*)(stage + o * 36 + p) : null;
                    Transposes.Transpose16(rows, dst + p * pointStride, nr, 16);
                }
            }
        }
    }

    // F(2,3)'s A (the transpose of the output transform's Aᵀ = [1 1 1 0; 0 1 −1 −1]) applied to d0, d1.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientRows2(Vector512<float> d0, Vector512<float> d1, Vector512<float>* o, int stride)
    {
        o[0] = d0; o[stride] = d0 + d1; o[2 * stride] = d0 - d1; o[3 * stride] = -d1;
    }

    // F(4,3)'s A, the transpose of OutputRows4's Aᵀ, applied to d0..d3.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientRows4(Vector512<float> d0, Vector512<float> d1, Vector512<float> d2, Vector512<float> d3, Vector512<float>* o, int stride)
    {
        var even = d0 + d2; var odd = d1 + d3;
        var even4 = d0 + d2 * 4f; var odd4 = d1 * 2f + d3 * 8f;
        o[0] = d0;                      // d0
        o[stride] = even + odd;         // d0 + d1 + d2 + d3
        o[2 * stride] = even - odd;     // d0 − d1 + d2 − d3
        o[3 * stride] = even4 + odd4;   // d0 + 2d1 + 4d2 + 8d3
        o[4 * stride] = even4 - odd4;   // d0 − 2d1 + 4d2 − 8d3
        o[5 * stride] = d3;             // d3
    }

    /// <summary>
    /// dw[o, i] += Gᵀ M[·, ·, i, o] G (3x3 from window x window), M the sum of the parts' (part q at m + q·partStride),
    /// M_p at + p·pointStride, row i, column o. In blocks of
    /// 16 input by 16 output channels over the threads: vectors run over output channels, and each output channel's
    /// 16·9 results (contiguous in dw) are transposed out of them in 16x16 blocks.
    /// </summary>
    private static void GradientOutputTransform(in ConvGeometry g, int tile, float* m, int parts, long partStride, long pointStride, int ldm, float* dw)
    {
        int ic = g.InChannels, oc = g.OutChannels, window = tile + 2;
        float[] gm = GFor(tile);
        int iBlocks = (ic + 15) / 16, oBlocks = (oc + 15) / 16;
        nint mp = (nint)m, dwp = (nint)dw;
        WorkerPool.For(iBlocks * oBlocks, task =>
        {
            fixed (float* coef = gm)
                GradientOutputBlock(ic, oc, window, (float*)mp, parts, partStride, pointStride, ldm, (float*)dwp, coef, task / oBlocks * 16, task % oBlocks * 16);
        });
    }

    [SkipLocalsInit]   // the staging arrays are written before they are read (rows past the block's channels are dropped)
    private static void GradientOutputBlock(int ic, int oc, int window, float* m, int parts, long partStride, long pointStride, int ldm, float* dw,
        float* coef, int i0, int o0)
    {
        int iCount = Math.Min(16, ic - i0), oCount = Math.Min(16, oc - o0);
        var results = stackalloc Vector512<float>[16 * 9];   // [input channel in block][tap], over 16 output channels
        var t = stackalloc Vector512<float>[3 * 6];          // Gᵀ·M, 3 x window
        var rows = stackalloc float*[16];
        float* byChannel = stackalloc float[16 * 16 * 9];      // [output channel][input channel in block][tap]
        var sum = stackalloc Vector512<float>[36];           // M over the parts, [point]
        for (int i = 0; i < iCount; i++)
        {
            float* src = m + (long)(i0 + i) * ldm + o0;
            for (int p = 0; p < window * window; p++)
            {
                var s = Vector512.Load(src + p * pointStride);
                for (int q = 1; q < parts; q++) s += Vector512.Load(src + q * partStride + p * pointStride);
                sum[p] = s;
            }
            for (int r = 0; r < 3; r++)
                for (int b = 0; b < window; b++)
                {
                    var s = Vector512<float>.Zero;
                    for (int a = 0; a < window; a++)
                        if (coef[a * 3 + r] != 0) s += sum[a * window + b] * coef[a * 3 + r];
                    t[r * window + b] = s;
                }
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++)
                {
                    var s = Vector512<float>.Zero;
                    for (int b = 0; b < window; b++)
                        if (coef[b * 3 + c] != 0) s += t[r * window + b] * coef[b * 3 + c];
                    results[i * 9 + r * 3 + c] = s;
                }
        }
        // results[(i, tap)] over output channels → byChannel[o][(i, tap)], 16 rows of 16 at a time.
        for (int q = 0; q < 9; q++)
        {
            for (int r = 0; r < 16; r++) rows[r] = (float*)(results + q * 16 + r);
            Transposes.Transpose16(rows, byChannel + q * 16, 16 * 9, 16);
        }
        for (int o = 0; o < oCount; o++)
        {
            float* dst = dw + ((long)(o0 + o) * ic + i0) * 9, src = byChannel + o * 16 * 9;
            int n = iCount * 9, j = 0;
            for (; j + 16 <= n; j += 16) (Vector512.Load(dst + j) + Vector512.Load(src + j)).Store(dst + j);
            for (; j < n; j++) dst[j] += src[j];
        }
    }

    private static readonly Vector512<int> InterleaveLow = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> InterleaveHigh = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>
    /// V for lanes [first, first + count) of a block of images starting at x: V_p in panels of 64 lanes,
    /// [p][panel][channel][64]. Lanes at or past <paramref name="valid"/> (the block's last image ends there) are zero.
    /// The input is read in place: rows above or below the image are zero vectors, and columns outside it are
    /// masked off in the loads (the padding, and a group's slots past the image). Only the chunk's lanes [from, to)
    /// (multiples of 16) are made, when given, so that threads can share a chunk.
    /// </summary>
    private static void InputTransform(in ConvGeometry g, in Layout layout, float* x, int first, int count, int valid, float* v, int from = 0, int to = int.MaxValue)
    {
        int ic = g.InChannels, h = g.Height, w = g.Width, slots = layout.Slots;
        long pointStride = PointStride(ic, count), plane = (long)h * w;
        Vector512<int> evens = Deinterleave.Evens, odds = Deinterleave.Odds;
        var t = stackalloc Vector512<float>[16];
        var rows = stackalloc float*[4];   // the (up to four) tile rows' input rows for the current i, or null
        for (int lane = first + from; lane < first + Math.Min(count, to); lane += 16)
        {
            int local = lane - first;
            float* column = v + (long)(local / 64) * ic * 64 + local % 64;   // + p·pointStride + c·64
            if (lane >= valid)
            {
                ClearLanes(column, 16, ic, pointStride);
                continue;
            }
            var (image, ty, tx0) = layout.Locate(lane);
            // Input column of lane 0 of the lo reads (tile column 2·tx − 1, the padding on the left) and the masks of
            // the four reads (lo, hi, each at +0 and +2): lanes inside [0, w).
            int col = slots >= 16 ? 2 * tx0 - 1 : -1;
            var lo0Mask = ColumnMask(col, w); var lo2Mask = ColumnMask(col + 2, w);
            Vector512<float> hi0Mask = default, hi2Mask = default;
            Vector256<float> q0Mask = default, q2Mask = default;
            if (slots >= 16) { hi0Mask = ColumnMask(col + 16, w); hi2Mask = ColumnMask(col + 18, w); }
            else if (slots == 4) { q0Mask = lo0Mask.GetLower(); q2Mask = lo2Mask.GetLower(); }
            int tileRows = slots >= 16 ? 1 : 16 / slots;
            for (int c = 0; c < ic; c++)
            {
                float* planeBase = x + (image * ic + c) * plane;
                for (int i = 0; i < 4; i++)
                {
                    for (int k = 0; k < tileRows; k++)
                    {
                        int row = 2 * (ty + k) + i - 1;
                        rows[k] = (uint)row < (uint)h ? planeBase + (long)row * w + col : null;
                    }
                    // lo ‖ hi: the 32 columns 2·tx − 1 + 0..1 of the group's 16 tiles (and, at +2, columns 2·tx − 1 + 2..3).
                    Vector512<float> lo0, hi0, lo2, hi2;
                    if (slots >= 16)
                    {
                        float* r = rows[0];
                        lo0 = Load(r, 0, lo0Mask); hi0 = Load(r, 16, hi0Mask); lo2 = Load(r, 2, lo2Mask); hi2 = Load(r, 18, hi2Mask);
                    }
                    else if (slots == 8)
                    {
                        lo0 = Load(rows[0], 0, lo0Mask); hi0 = Load(rows[1], 0, lo0Mask); lo2 = Load(rows[0], 2, lo2Mask); hi2 = Load(rows[1], 2, lo2Mask);
                    }
                    else
                    {
                        lo0 = Vector512.Create(Load(rows[0], 0, q0Mask), Load(rows[1], 0, q0Mask)); hi0 = Vector512.Create(Load(rows[2], 0, q0Mask), Load(rows[3], 0, q0Mask));
                        lo2 = Vector512.Create(Load(rows[0], 2, q2Mask), Load(rows[1], 2, q2Mask)); hi2 = Vector512.Create(Load(rows[2], 2, q2Mask), Load(rows[3], 2, q2Mask));
                    }
                    var d0 = Avx512F.PermuteVar16x32x2(lo0, evens, hi0);
                    var d1 = Avx512F.PermuteVar16x32x2(lo0, odds, hi0);
                    var d2 = Avx512F.PermuteVar16x32x2(lo2, evens, hi2);
                    var d3 = Avx512F.PermuteVar16x32x2(lo2, odds, hi2);
                    // Row i of d·B, B = [1 0 0 0; 0 1 −1 1; −1 1 1 0; 0 0 0 −1]ᵀ.
                    t[i * 4] = d0 - d2; t[i * 4 + 1] = d1 + d2; t[i * 4 + 2] = d2 - d1; t[i * 4 + 3] = d1 - d3;
                }
                float* dst = column + c * 64;
                for (int j = 0; j < 4; j++)   // Bᵀ·t, column j
                {
                    Vector512<float> t0 = t[j], t1 = t[4 + j], t2 = t[8 + j], t3 = t[12 + j];
                    (t0 - t2).Store(dst + j * pointStride);
                    (t1 + t2).Store(dst + (4 + j) * pointStride);
                    (t2 - t1).Store(dst + (8 + j) * pointStride);
                    (t1 - t3).Store(dst + (12 + j) * pointStride);
                }
            }
        }
    }

    // Zeros for a group of lanes past the block's last image, in every point and channel (panel layout).
    private static void ClearLanes(float* column, int points, int ic, long pointStride)
    {
        for (int p = 0; p < points; p++)
            for (int c = 0; c < ic; c++) Vector512<float>.Zero.Store(column + p * pointStride + c * 64);
    }

    /// <summary>Lanes j with 0 ≤ first + j &lt; width, as an all-bits float mask.</summary>
    private static Vector512<float> ColumnMask(int first, int width)
    {
        var columns = Vector512<int>.Indices + Vector512.Create(first);
        return (Vector512.GreaterThanOrEqual(columns, Vector512<int>.Zero) & Vector512.LessThan(columns, Vector512.Create(width))).AsSingle();
    }

    // 16 floats from row + offset, masked lanes (outside the image) zero; a null row (above or below it) is all zero.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load(float* row, int offset, Vector512<float> mask) =>
        row == null ? Vector512<float>.Zero : Avx512F.MaskLoad(row + offset, mask, Vector512<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Load(float* row, int offset, Vector256<float> mask) =>
        row == null ? Vector256<float>.Zero : Avx.MaskLoad(row + offset, mask);

    /// <summary>y tiles = Aᵀ M A (+ bias), A = [1 0; 1 1; 1 −1; 0 −1], for the valid lanes of a chunk.</summary>
    private static void OutputTransform(in ConvGeometry g, in Layout layout, float* m, int first, int count, int valid, float* bias, float* y)
    {
        int oc = g.OutChannels, oh = g.OutHeight, ow = g.OutWidth, slots = layout.Slots;
        long pointStride = PointStride(oc, count);
        Vector512<int> low = InterleaveLow, high = InterleaveHigh;
        for (int lane = first; lane < Math.Min(first + count, valid); lane += 16)
        {
            var (image, ty, tx0) = layout.Locate(lane);
            for (int o = 0; o < oc; o++)
            {
                float* src = m + (long)o * count + (lane - first);
                Vector512<float> b = bias == null ? Vector512<float>.Zero : Vector512.Create(bias[o]);
                float* plane = y + ((long)image * oc + o) * oh * ow;
                // s = Aᵀ·M (2x4), then the two output columns of each row: o·A.
                Vector512<float> m00 = Vector512.Load(src), m01 = Vector512.Load(src + pointStride), m02 = Vector512.Load(src + 2 * pointStride), m03 = Vector512.Load(src + 3 * pointStride);
                Vector512<float> m10 = Vector512.Load(src + 4 * pointStride), m11 = Vector512.Load(src + 5 * pointStride), m12 = Vector512.Load(src + 6 * pointStride), m13 = Vector512.Load(src + 7 * pointStride);
                Vector512<float> m20 = Vector512.Load(src + 8 * pointStride), m21 = Vector512.Load(src + 9 * pointStride), m22 = Vector512.Load(src + 10 * pointStride), m23 = Vector512.Load(src + 11 * pointStride);
                Vector512<float> m30 = Vector512.Load(src + 12 * pointStride), m31 = Vector512.Load(src + 13 * pointStride), m32 = Vector512.Load(src + 14 * pointStride), m33 = Vector512.Load(src + 15 * pointStride);
                Vector512<float> s00 = m00 + m10 + m20, s01 = m01 + m11 + m21, s02 = m02 + m12 + m22, s03 = m03 + m13 + m23;
                Vector512<float> s10 = m10 - m20 - m30, s11 = m11 - m21 - m31, s12 = m12 - m22 - m32, s13 = m13 - m23 - m33;
                for (int ii = 0; ii < 2; ii++)
                {
                    Vector512<float> even, odd;   // output columns 2·tx and 2·tx + 1 of output row 2·ty + ii
                    if (ii == 0) { even = s00 + s01 + s02 + b; odd = s01 - s02 - s03 + b; }
                    else { even = s10 + s11 + s12 + b; odd = s11 - s12 - s13 + b; }
                    var lo = Avx512F.PermuteVar16x32x2(even, low, odd);
                    var hi = Avx512F.PermuteVar16x32x2(even, high, odd);
                    if (slots >= 16)
                    {
                        int row = 2 * ty + ii;
                        if (row >= oh) continue;
                        float* dst = plane + (long)row * ow + 2 * tx0;
                        StorePartial(dst, lo, ow - 2 * tx0);
                        StorePartial(dst + 16, hi, ow - 2 * tx0 - 16);
                    }
                    else if (slots == 8)
                    {
                        StoreRow(plane, 2 * ty + ii, oh, ow, lo);
                        StoreRow(plane, 2 * ty + 2 + ii, oh, ow, hi);
                    }
                    else
                    {
                        StoreRow(plane, 2 * ty + ii, oh, ow, lo.GetLower());
                        StoreRow(plane, 2 * ty + 2 + ii, oh, ow, lo.GetUpper());
                        StoreRow(plane, 2 * ty + 4 + ii, oh, ow, hi.GetLower());
                        StoreRow(plane, 2 * ty + 6 + ii, oh, ow, hi.GetUpper());
                    }
                }
            }
        }
    }

    private static readonly Vector512<long> InterleavePairsLow = Vector512.Create(0L, 8, 1, 9, 2, 10, 3, 11);
    private static readonly Vector512<long> InterleavePairsHigh = Vector512.Create(4L, 12, 5, 13, 6, 14, 7, 15);

    /// <summary>
    /// F(4x4,3x3)'s V (36 points) for lanes [first, first + count), as <see cref="InputTransform"/>. A tile's input
    /// columns are 4·tx − 1 + 0..5: the columns 0..3 of 16 tiles are the four residues mod 4 of 64 contiguous
    /// values (two rounds of even/odd permutes), and columns 4..5 those of the 64 values four further on. Tile rows
    /// have 4, 8 or a multiple of 16 slots, so a group's 64 values are one row's, two rows' 32 or four rows' 16.
    /// </summary>
    private static void InputTransform4(in ConvGeometry g, in Layout layout, float* x, int first, int count, int valid, float* v, int from = 0, int to = int.MaxValue)
    {
        if (SpecializedInput4)
        {
            if (layout.Slots == 4) InputTransform4<Slots4>(g, layout, x, first, count, valid, v, from, to);
            else if (layout.Slots == 8) InputTransform4<Slots8>(g, layout, x, first, count, valid, v, from, to);
            else InputTransform4<Slots16>(g, layout, x, first, count, valid, v, from, to);
            return;
        }
        const int points = 36;
        int ic = g.InChannels, h = g.Height, w = g.Width, slots = layout.Slots;
        long pointStride = PointStride(ic, count), plane = (long)h * w;
        var t = stackalloc Vector512<float>[36];
        var rows = stackalloc float*[4];
        var masks = stackalloc Vector512<float>[8];   // the four reads at +0 and the four at +4
        var offsets = stackalloc int[8];
        for (int lane = first + from; lane < first + Math.Min(count, to); lane += 16)
        {
            int local = lane - first;
            float* column = v + (long)(local / 64) * ic * 64 + local % 64;   // + p·pointStride + c·64
            if (lane >= valid)
            {
                ClearLanes(column, points, ic, pointStride);
                continue;
            }
            var (image, ty, tx0) = layout.Locate(lane);
            int col = slots >= 16 ? 4 * tx0 - 1 : -1, tileRows = slots >= 16 ? 1 : 16 / slots;
            // Read k (0..3) comes from tile row k / (4 / tileRows)... as: one row (16 slots), two rows (8) or four (4).
            for (int k = 0; k < 4; k++)
            {
                int within = slots >= 16 ? 16 * k : slots == 8 ? 16 * (k % 2) : 0;
                offsets[k] = within; offsets[4 + k] = within + 4;
                masks[k] = ColumnMask(col + within, w); masks[4 + k] = ColumnMask(col + within + 4, w);
            }
            for (int c = 0; c < ic; c++)
            {
                float* planeBase = x + (image * ic + c) * plane;
                for (int i = 0; i < 6; i++)
                {
                    for (int k = 0; k < tileRows; k++)
                    {
                        int row = 4 * (ty + k) + i - 1;
                        rows[k] = (uint)row < (uint)h ? planeBase + (long)row * w + col : null;
                    }
                    // Columns 0..3 of the 16 tiles from the reads at +0, columns 4..5 from those at +4 (their residues 0 and 1).
                    ReadResidues4(rows, slots, offsets, masks, out var d0, out var d1, out var d2, out var d3);
                    ReadResidues4(rows, slots, offsets + 4, masks + 4, out var d4, out var d5, out _, out _);
                    InputRows4(d0, d1, d2, d3, d4, d5, t + i * 6, 1);   // row i of d·B
                }
                float* dst = column + c * 64;
                for (int j = 0; j < 6; j++)   // Bᵀ·t, column j
                {
                    InputRows4(t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j], t + j, 6);   // in place: column j of t
                    for (int a = 0; a < 6; a++) t[a * 6 + j].Store(dst + (a * 6 + j) * pointStride);
                }
            }
        }
    }

    /// <summary>
    /// Whether F(4x4)'s input transform runs specialized by tile numbering (on by default; off only to measure it and to
    /// test it against the general one). `bench/run.sh --ab NchwWinograd.SpecializedInput4=false,true --ab-work
    /// nchw-conv:32,14,128`: 0.914x (16 channels at 28x28 0.959x); the resnet20 training step 0.972x (noise floor 1.005).
    /// </summary>
    internal static bool SpecializedInput4 = true;

    /// <summary>How a 16-lane group spans tile rows: 16 or more slots per row (one row), 8 (two rows), 4 (four rows).</summary>
    private interface ISlots { static abstract int TileRows { get; } }
    private readonly struct Slots4 : ISlots { public static int TileRows => 4; }
    private readonly struct Slots8 : ISlots { public static int TileRows => 2; }
    private readonly struct Slots16 : ISlots { public static int TileRows => 1; }

    /// <summary>
    /// <see cref="InputTransform4(in ConvGeometry, in Layout, float*, int, int, int, float*, int, int)"/> for one
    /// numbering of the tiles, with the group's read offsets and column masks in locals: the same reads, permutes and
    /// arithmetic, without the per-read branches on the slot count and the reloads from stack arrays.
    /// </summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputTransform4<TS>(in ConvGeometry g, in Layout layout, float* x, int first, int count, int valid, float* v, int from, int to)
        where TS : ISlots
    {
        int ic = g.InChannels, h = g.Height, w = g.Width, tileRows = TS.TileRows;
        long pointStride = PointStride(ic, count), plane = (long)h * w;
        var t = stackalloc Vector512<float>[36];
        Vector512<int> evens = Deinterleave.Evens, odds = Deinterleave.Odds;
        for (int lane = first + from; lane < first + Math.Min(count, to); lane += 16)
        {
            int local = lane - first;
            float* column = v + (long)(local / 64) * ic * 64 + local % 64;   // + p·pointStride + c·64
            if (lane >= valid)
            {
                ClearLanes(column, 36, ic, pointStride);
                continue;
            }
            var (image, ty, tx0) = layout.Locate(lane);
            int col = tileRows == 1 ? 4 * tx0 - 1 : -1;
            // Read k's offset within its row: 16k (one row), 16·(k mod 2) (two rows), 0 (four rows); and +4 for columns 4, 5.
            const int w0 = 0;
            int w1 = tileRows <= 2 ? 16 : 0, w2 = tileRows == 1 ? 32 : 0, w3 = tileRows == 1 ? 48 : tileRows == 2 ? 16 : 0;
            var m0 = ColumnMask(col + w0, w); var m1 = ColumnMask(col + w1, w); var m2 = ColumnMask(col + w2, w); var m3 = ColumnMask(col + w3, w);
            var n0 = ColumnMask(col + w0 + 4, w); var n1 = ColumnMask(col + w1 + 4, w); var n2 = ColumnMask(col + w2 + 4, w); var n3 = ColumnMask(col + w3 + 4, w);
            for (int c = 0; c < ic; c++)
            {
                float* planeBase = x + (image * ic + c) * plane + col;
                for (int i = 0; i < 6; i++)
                {
                    // The row of each read: all from tile row 0 (16 slots), rows 0, 0, 1, 1 (8), rows 0..3 (4).
                    int row0 = 4 * ty + i - 1;
                    float* q0 = (uint)row0 < (uint)h ? planeBase + (long)row0 * w : null;
                    float* q1 = q0, q2 = q0, q3 = q0;
                    if (tileRows >= 2)
                    {
                        int row1 = row0 + 4;
                        float* p1 = (uint)row1 < (uint)h ? planeBase + (long)row1 * w : null;
                        if (tileRows == 2) { q2 = p1; q3 = p1; }
                        else
                        {
                            q1 = p1;
                            int row2 = row0 + 8, row3 = row0 + 12;
                            q2 = (uint)row2 < (uint)h ? planeBase + (long)row2 * w : null;
                            q3 = (uint)row3 < (uint)h ? planeBase + (long)row3 * w : null;
                        }
                    }
                    var a0 = Load(q0, w0, m0); var a1 = Load(q1, w1, m1); var a2 = Load(q2, w2, m2); var a3 = Load(q3, w3, m3);
                    var e01 = Avx512F.PermuteVar16x32x2(a0, evens, a1); var o01 = Avx512F.PermuteVar16x32x2(a0, odds, a1);
                    var e23 = Avx512F.PermuteVar16x32x2(a2, evens, a3); var o23 = Avx512F.PermuteVar16x32x2(a2, odds, a3);
                    var d0 = Avx512F.PermuteVar16x32x2(e01, evens, e23); var d2 = Avx512F.PermuteVar16x32x2(e01, odds, e23);
                    var d1 = Avx512F.PermuteVar16x32x2(o01, evens, o23); var d3 = Avx512F.PermuteVar16x32x2(o01, odds, o23);
                    var b0 = Load(q0, w0 + 4, n0); var b1 = Load(q1, w1 + 4, n1); var b2 = Load(q2, w2 + 4, n2); var b3 = Load(q3, w3 + 4, n3);
                    var f01 = Avx512F.PermuteVar16x32x2(b0, evens, b1); var g01 = Avx512F.PermuteVar16x32x2(b0, odds, b1);
                    var f23 = Avx512F.PermuteVar16x32x2(b2, evens, b3); var g23 = Avx512F.PermuteVar16x32x2(b2, odds, b3);
                    var d4 = Avx512F.PermuteVar16x32x2(f01, evens, f23); var d5 = Avx512F.PermuteVar16x32x2(g01, evens, g23);
                    InputRows4(d0, d1, d2, d3, d4, d5, t + i * 6, 1);   // row i of d·B
                }
                float* dst = column + c * 64;
                for (int j = 0; j < 6; j++)   // Bᵀ·t, column j
                {
                    InputRows4(t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j], t + j, 6);
                    float* o = dst + j * pointStride;
                    t[j].Store(o); t[6 + j].Store(o + 6 * pointStride); t[12 + j].Store(o + 12 * pointStride);
                    t[18 + j].Store(o + 18 * pointStride); t[24 + j].Store(o + 24 * pointStride); t[30 + j].Store(o + 30 * pointStride);
                }
            }
        }
    }

    /// <summary>
    /// The four 16-value reads of a group's 64 consecutive values (rows[0] at 16 slots; rows[0] and rows[1] in halves at
    /// 8; rows[0..3] at 4), at offsets[k] under masks[k], split into their residues mod 4: value 4j + k goes to lane j
    /// of d{k} (column k of 16 four-wide tiles), by two rounds of even/odd permutes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ReadResidues4(float** rows, int slots, int* offsets, Vector512<float>* masks,
        out Vector512<float> d0, out Vector512<float> d1, out Vector512<float> d2, out Vector512<float> d3)
    {
        float* r0 = rows[0], r1 = slots == 8 ? rows[0] : slots == 4 ? rows[1] : rows[0];
        float* r2 = slots == 8 ? rows[1] : slots == 4 ? rows[2] : rows[0], r3 = slots == 8 ? rows[1] : slots == 4 ? rows[3] : rows[0];
        Vector512<int> evens = Deinterleave.Evens, odds = Deinterleave.Odds;
        var a0 = Load(r0, offsets[0], masks[0]); var a1 = Load(r1, offsets[1], masks[1]);
        var a2 = Load(r2, offsets[2], masks[2]); var a3 = Load(r3, offsets[3], masks[3]);
        var e01 = Avx512F.PermuteVar16x32x2(a0, evens, a1); var o01 = Avx512F.PermuteVar16x32x2(a0, odds, a1);
        var e23 = Avx512F.PermuteVar16x32x2(a2, evens, a3); var o23 = Avx512F.PermuteVar16x32x2(a2, odds, a3);
        d0 = Avx512F.PermuteVar16x32x2(e01, evens, e23); d2 = Avx512F.PermuteVar16x32x2(e01, odds, e23);
        d1 = Avx512F.PermuteVar16x32x2(o01, evens, o23); d3 = Avx512F.PermuteVar16x32x2(o01, odds, o23);
    }

    // The six rows of F(4,3)'s Bᵀ applied to d0..d5, written at o[0], o[stride], ...
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputRows4(Vector512<float> d0, Vector512<float> d1, Vector512<float> d2, Vector512<float> d3, Vector512<float> d4, Vector512<float> d5,
        Vector512<float>* o, int stride)
    {
        var d4m4d2 = d4 - d2 * 4f; var d3m4d1 = d3 - d1 * 4f;
        var d4md2 = d4 - d2; var d3md1 = d3 - d1;
        o[0] = d0 * 4f - d2 * 5f + d4;              // 4d0 − 5d2 + d4
        o[stride] = d4m4d2 + d3m4d1;                // −4d1 − 4d2 + d3 + d4
        o[2 * stride] = d4m4d2 - d3m4d1;            // 4d1 − 4d2 − d3 + d4
        o[3 * stride] = d4md2 + d3md1 * 2f;         // −2d1 − d2 + 2d3 + d4
        o[4 * stride] = d4md2 - d3md1 * 2f;         // 2d1 − d2 − 2d3 + d4
        o[5 * stride] = d1 * 4f - d3 * 5f + d5;     // 4d1 − 5d3 + d5
    }

    // The four rows of F(4,3)'s Aᵀ applied to m0..m5.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputRows4(Vector512<float> m0, Vector512<float> m1, Vector512<float> m2, Vector512<float> m3, Vector512<float> m4, Vector512<float> m5,
        Vector512<float>* o, int stride)
    {
        var a = m1 + m2; var b = m1 - m2; var c = m3 + m4; var d = m3 - m4;
        o[0] = m0 + a + c;                  // m0 + m1 + m2 + m3 + m4
        o[stride] = b + d * 2f;             // m1 − m2 + 2(m3 − m4)
        o[2 * stride] = a + c * 4f;         // m1 + m2 + 4(m3 + m4)
        o[3 * stride] = b + d * 8f + m5;    // m1 − m2 + 8(m3 − m4) + m5
    }

    /// <summary>F(4x4,3x3)'s y tiles = Aᵀ M A (+ bias) for the valid lanes of a chunk; four output columns per tile.</summary>
    private static void OutputTransform4(in ConvGeometry g, in Layout layout, float* m, int first, int count, int valid, float* bias, float* y)
    {
        int oc = g.OutChannels, oh = g.OutHeight, ow = g.OutWidth, slots = layout.Slots;
        long pointStride = PointStride(oc, count);
        Vector512<int> low = InterleaveLow, high = InterleaveHigh;
        Vector512<long> pairsLow = InterleavePairsLow, pairsHigh = InterleavePairsHigh;
        var s = stackalloc Vector512<float>[24];   // Aᵀ·M, 4 x 6
        var o = stackalloc Vector512<float>[4];
        for (int lane = first; lane < Math.Min(first + count, valid); lane += 16)
        {
            var (image, ty, tx0) = layout.Locate(lane);
            for (int oc0 = 0; oc0 < oc; oc0++)
            {
                float* src = m + (long)oc0 * count + (lane - first);
                var b = bias == null ? Vector512<float>.Zero : Vector512.Create(bias[oc0]);
                float* plane = y + ((long)image * oc + oc0) * oh * ow;
                for (int j = 0; j < 6; j++)
                    OutputRows4(Vector512.Load(src + j * pointStride), Vector512.Load(src + (6 + j) * pointStride), Vector512.Load(src + (12 + j) * pointStride),
                        Vector512.Load(src + (18 + j) * pointStride), Vector512.Load(src + (24 + j) * pointStride), Vector512.Load(src + (30 + j) * pointStride), s + j, 6);
                for (int a = 0; a < 4; a++)   // output row 4·ty + a of each tile row
                {
                    OutputRows4(s[a * 6], s[a * 6 + 1], s[a * 6 + 2], s[a * 6 + 3], s[a * 6 + 4], s[a * 6 + 5], o, 1);
                    // Interleave the four columns: q0 holds tiles 0..3 (4 columns each), q1 tiles 4..7, and so on.
                    var p01l = Avx512F.PermuteVar16x32x2(o[0] + b, low, o[1] + b).AsDouble(); var p01h = Avx512F.PermuteVar16x32x2(o[0] + b, high, o[1] + b).AsDouble();
                    var p23l = Avx512F.PermuteVar16x32x2(o[2] + b, low, o[3] + b).AsDouble(); var p23h = Avx512F.PermuteVar16x32x2(o[2] + b, high, o[3] + b).AsDouble();
                    var q0 = Avx512F.PermuteVar8x64x2(p01l, pairsLow, p23l).AsSingle(); var q1 = Avx512F.PermuteVar8x64x2(p01l, pairsHigh, p23l).AsSingle();
                    var q2 = Avx512F.PermuteVar8x64x2(p01h, pairsLow, p23h).AsSingle(); var q3 = Avx512F.PermuteVar8x64x2(p01h, pairsHigh, p23h).AsSingle();
                    if (slots >= 16)
                    {
                        int row = 4 * ty + a;
                        if (row >= oh) continue;
                        float* dst = plane + (long)row * ow + 4 * tx0;
                        int left = ow - 4 * tx0;
                        StorePartial(dst, q0, left); StorePartial(dst + 16, q1, left - 16); StorePartial(dst + 32, q2, left - 32); StorePartial(dst + 48, q3, left - 48);
                    }
                    else if (slots == 8)
                    {
                        int row = 4 * ty + a;
                        if (row < oh) { StorePartial(plane + (long)row * ow, q0, ow); StorePartial(plane + (long)row * ow + 16, q1, ow - 16); }
                        row += 4;
                        if (row < oh) { StorePartial(plane + (long)row * ow, q2, ow); StorePartial(plane + (long)row * ow + 16, q3, ow - 16); }
                    }
                    else
                    {
                        StoreRow(plane, 4 * ty + a, oh, ow, q0);
                        StoreRow(plane, 4 * ty + 4 + a, oh, ow, q1);
                        StoreRow(plane, 4 * ty + 8 + a, oh, ow, q2);
                        StoreRow(plane, 4 * ty + 12 + a, oh, ow, q3);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* plane, int row, int oh, int ow, Vector512<float> values)
    {
        if (row < oh) StorePartial(plane + (long)row * ow, values, ow);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* plane, int row, int oh, int ow, Vector256<float> values)
    {
        if (row >= oh) return;
        float* dst = plane + (long)row * ow;
        if (ow >= 8) values.Store(dst);
        else Avx.MaskStore(dst, Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(ow)).AsSingle(), values);
    }

    /// <summary>The first min(count, 16) lanes of v at dst (nothing when count ≤ 0): a masked store at the edges.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePartial(float* dst, Vector512<float> v, int count)
    {
        if (count >= 16) v.Store(dst);
        else if (count > 0) Avx512F.MaskStore(dst, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle(), v);
    }

    private static AlignedBuffer Scratch(ref AlignedBuffer? buffer, long length) =>
        NchwConv.Scratch(ref buffer, checked((int)length));
}
