using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// Winograd F(2x2,3x3) for the training path's stride-1, padding-1 3x3 convolutions on NCHW tensors: the forward
/// pass, and dx as the forward pass of dy with the flipped, transposed weights. Each 2x2 output tile is
/// Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A over its 4x4 input tile d; summed over input channels, the 16 element-wise products are
/// 16 matrix products M_p (OC, tiles) = U_p (OC, IC) · V_p (IC, tiles) on the packed micro-kernel: 16 multiply-adds
/// per channel pair and 4 output pixels where the direct convolution needs 36, 2.25x fewer.
/// <para>
/// The transforms run on vectors of 16 tiles. A tile's input columns are 2·tx − 1 + 0..3, so the four columns of 16
/// tiles are the even and odd lanes of two contiguous 32-float reads (one AVX-512 two-source permute each), and
/// the outputs go back by interleaving. The input is read in place, with masked loads for the padding (a padded
/// copy cost a fifth of the time). Tiles are numbered in "slots": a tile row takes 4, 8 or a multiple of 16
/// slots (the tiles past the image are computed and dropped), so that a 16-lane group is one piece of a tile row or
/// 2 or 4 whole rows. Work goes over the threads in blocks of images; within a block the transformed input and the
/// products are made in chunks that stay in L2.
/// </para>
/// Vector512 only: elsewhere <see cref="Supports"/> is false and the direct path runs.
/// </summary>
public static unsafe class NchwWinograd
{
    public const int Points = 16;
    private const int ChunkBytes = 768 * 1024;   // transformed input and products of one chunk (V and M), under L2
    private const int MinLanesPerTask = 256;

    [ThreadStatic] private static AlignedBuffer? _transformed, _products;

    /// <summary>Whether this machine and geometry can take the path: 3x3, stride 1, padding 1, with AVX-512.</summary>
    public static bool Supports(in ConvGeometry g) =>
        PackedGemm.NR == 64 && Avx512F.IsSupported && g.KernelH == 3 && g.KernelW == 3 && g.Stride == 1 && g.Padding == 1;

    /// <summary>Floats of the transformed weights: 16·OC·IC.</summary>
    public static long WeightSize(int outChannels, int inChannels) => (long)Points * outChannels * inChannels;

    /// <summary>
    /// u[p][o][i] = (G g Gᵀ)[p / 4][p mod 4] for g = w[o, i] (3x3), with G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]:
    /// the left operand of the 16 products, rows of IC contiguous values.
    /// <para>
    /// With <paramref name="forInputGradient"/>, the weights of dx instead, the convolution of dy with the flipped,
    /// transposed kernel w'[i, o] = w[o, i] rotated by 180°: u[p][i][o], rows of OC values. No flipped copy is
    /// needed: G·J = P·G (J reverses three taps, P swaps rows 0 and 3 of four), so G w' Gᵀ = P (G g Gᵀ) Pᵀ, the same
    /// transform with points 0 and 3 of each axis swapped.
    /// </para>
    /// </summary>
    public static void TransformWeights(float* w, int outChannels, int inChannels, float* u, bool forInputGradient = false)
    {
        long plane = (long)outChannels * inChannels;
        int rows = forInputGradient ? inChannels : outChannels, columns = forInputGradient ? outChannels : inChannels;
        nint wp = (nint)w, up = (nint)u;
        WorkerPool.For(rows, row =>
        {
            // 16 columns at a time, their nine taps transposed into nine vectors (zero past the last column).
            float* byTap = stackalloc float[9 * 16];
            var g = stackalloc Vector512<float>[12];
            var r = stackalloc Vector512<float>[16];
            for (int c0 = 0; c0 < columns; c0 += 16)
            {
                int count = Math.Min(16, columns - c0);
                if (count < 16) new Span<float>(byTap, 9 * 16).Clear();
                for (int q = 0; q < count; q++)
                {
                    int o = forInputGradient ? c0 + q : row, i = forInputGradient ? row : c0 + q;
                    float* k = (float*)wp + ((long)o * inChannels + i) * 9;
                    for (int t = 0; t < 9; t++) byTap[t * 16 + q] = k[t];
                }
                for (int j = 0; j < 3; j++)   // g (4x3) = G·k
                {
                    var k0 = Vector512.Load(byTap + j * 16);
                    var k1 = Vector512.Load(byTap + (3 + j) * 16);
                    var k2 = Vector512.Load(byTap + (6 + j) * 16);
                    g[j] = k0; g[3 + j] = (k0 + k1 + k2) * 0.5f; g[6 + j] = (k0 - k1 + k2) * 0.5f; g[9 + j] = k2;
                }
                for (int a = 0; a < 4; a++)   // row a of g·Gᵀ
                {
                    Vector512<float> r0 = g[a * 3], r1 = g[a * 3 + 1], r2 = g[a * 3 + 2];
                    r[a * 4] = r0; r[a * 4 + 1] = (r0 + r1 + r2) * 0.5f; r[a * 4 + 2] = (r0 - r1 + r2) * 0.5f; r[a * 4 + 3] = r2;
                }
                float* dst = (float*)up + (long)row * columns + c0;
                for (int p = 0; p < Points; p++)
                {
                    int a = p / 4, b = p % 4;
                    int to = forInputGradient ? SwapEnds(a) * 4 + SwapEnds(b) : p;
                    StorePartial(dst + to * plane, r[p], count);
                }
            }
        });
    }

    private static int SwapEnds(int point) => point == 0 ? 3 : point == 3 ? 0 : point;

    /// <summary>How a geometry's tiles are numbered (see the class remarks).</summary>
    private readonly struct Layout
    {
        public Layout(in ConvGeometry g)
        {
            TileRows = (g.OutHeight + 1) / 2;
            int tileCols = (g.OutWidth + 1) / 2;
            Slots = tileCols <= 4 ? 4 : tileCols <= 8 ? 8 : (tileCols + 15) / 16 * 16;
            RowsPerGroup = Slots >= 16 ? 1 : 16 / Slots;
            int paddedRows = (TileRows + RowsPerGroup - 1) / RowsPerGroup * RowsPerGroup;
            Lanes = paddedRows * Slots;
        }

        public int TileRows { get; }
        /// <summary>Slots per tile row: 4, 8 or a multiple of 16.</summary>
        public int Slots { get; }
        public int RowsPerGroup { get; }
        /// <summary>Slots per image, a multiple of 16.</summary>
        public int Lanes { get; }
    }

    /// <summary>y (N, OC, H, W) = conv3x3(x) (+ bias), with u from <see cref="TransformWeights"/>.</summary>
    public static void Forward(in ConvGeometry g, int batch, float* x, float* u, float* bias, float* y)
    {
        if (!Supports(g)) throw new NotSupportedException($"Winograd F(2x2,3x3) on NCHW needs AVX-512 and a 3x3 stride-1 padding-1 convolution, not {g}");
        var layout = new Layout(g);
        var geometry = g;
        int ic = g.InChannels, oc = g.OutChannels;
        int perTask = Math.Max(1, Math.Min((MinLanesPerTask + layout.Lanes - 1) / layout.Lanes, (batch + Engine.Threads - 1) / Engine.Threads));
        int tasks = (batch + perTask - 1) / perTask;
        int chunkLanes = Math.Max(64, ChunkBytes / (Points * (ic + oc) * sizeof(float)) / 64 * 64);
        nint xp = (nint)x, up = (nint)u, bp = (nint)bias, yp = (nint)y;
        int[] rowOffsets = NchwConv.RowOffsets(oc, ic);
        WorkerPool.For(tasks, task =>
        {
            int n0 = task * perTask, images = Math.Min(perTask, batch - n0);
            int lanes = images * layout.Lanes, total = (lanes + 63) / 64 * 64;
            int chunk = Math.Min(chunkLanes, total);
            var v = Scratch(ref _transformed, (long)Points * ic * chunk);
            var m = Scratch(ref _products, (long)Points * oc * chunk);
            float[] zeros = new float[ic + 16];
            fixed (int* offsets = rowOffsets)
            fixed (float* z = zeros)
                for (int c0 = 0; c0 < total; c0 += chunk)
                {
                    int n = Math.Min(chunk, total - c0);
                    InputTransform(geometry, layout, (float*)xp + (long)n0 * geometry.InImage, c0, n, lanes, v.Pointer);
                    for (int p = 0; p < Points; p++)
                        PackedGemm.RunSerial(new PanelMatrix(v.Pointer + (long)p * ic * n, null, n, 1, ic), (float*)up + (long)p * oc * ic, offsets, z,
                            oc, m.Pointer + (long)p * oc * n, n);
                    OutputTransform(geometry, layout, m.Pointer, c0, n, lanes, (float*)bp, (float*)yp + (long)n0 * geometry.OutImage);
                }
        });
    }

    private static readonly Vector512<int> Evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> Odds = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    private static readonly Vector512<int> InterleaveLow = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> InterleaveHigh = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>
    /// V for lanes [first, first + count) of a block of images starting at x: V_p in panels of 64 lanes,
    /// [p][panel][channel][64]. Lanes at or past <paramref name="valid"/> (the block's last image ends there) are zero.
    /// The input is read in place: rows above or below the image are zero vectors, and columns outside it are
    /// masked off in the loads (the padding, and a group's slots past the image).
    /// </summary>
    private static void InputTransform(in ConvGeometry g, in Layout layout, float* x, int first, int count, int valid, float* v)
    {
        int ic = g.InChannels, h = g.Height, w = g.Width, slots = layout.Slots;
        long pointStride = (long)ic * count, plane = (long)h * w;
        Vector512<int> evens = Evens, odds = Odds;
        var t = stackalloc Vector512<float>[16];
        var rows = stackalloc float*[4];   // the (up to four) tile rows' input rows for the current i, or null
        for (int lane = first; lane < first + count; lane += 16)
        {
            int local = lane - first;
            float* column = v + (long)(local / 64) * ic * 64 + local % 64;   // + p·pointStride + c·64
            if (lane >= valid)
            {
                for (int p = 0; p < Points; p++)
                    for (int c = 0; c < ic; c++) Vector512<float>.Zero.Store(column + p * pointStride + c * 64);
                continue;
            }
            int image = lane / layout.Lanes, inImage = lane % layout.Lanes, ty = inImage / slots, tx0 = inImage % slots;
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
        long pointStride = (long)oc * count;
        Vector512<int> low = InterleaveLow, high = InterleaveHigh;
        for (int lane = first; lane < Math.Min(first + count, valid); lane += 16)
        {
            int image = lane / layout.Lanes, inImage = lane % layout.Lanes, ty = inImage / slots, tx0 = inImage % slots;
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
