using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// Winograd convolution for stride-1, padding-1 3x3 convolutions on NHWC activations (Lavin and Gray 2015, "Fast
/// Algorithms for Convolutional Neural Networks"), in two sizes: F(4x4,3x3) over 6x6 input tiles and F(2x2,3x3) over
/// 4x4 ones. Each output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A; the element-wise products, summed over input channels,
/// are one matrix product per point, V_ξν (tiles, IC) · U_ξν (IC, OC), on the packed micro-kernel. F(4x4) needs
/// 36·tiles·IC·OC multiply-adds where the direct convolution needs 9·16·tiles·IC·OC (4x fewer); F(2x2) needs
/// 16 per 4 output pixels (2.25x fewer) and its transformed weights are 16/9 of the direct ones instead of 4x,
/// which is what small images at batch 1 need (their products stream the weights with few tiles to reuse them).
/// Input and output transforms run on channel vectors.
/// </summary>
public static unsafe class Winograd
{
    /// <summary>Whether a convolution can take this path: 3x3, stride 1, padding 1, channels in whole vectors.</summary>
    public static bool Supports(in ConvGeometry g) =>
        g.KernelH == 3 && g.KernelW == 3 && g.Stride == 1 && g.Padding == 1 && g.InChannels % 16 == 0 && g.OutChannels % 16 == 0;

    /// <summary>Points (matrix products) of F(tile x tile, 3x3): 36 for tile 4, 16 for tile 2.</summary>
    public static int Points(int tile) => (tile + 2) * (tile + 2);

    /// <summary>
    /// The transformed weight matrices U_ξν = (G g Gᵀ)_ξν of F(tile x tile, 3x3), each (IC, OC) packed for the
    /// micro-kernel; scale folds BN in.
    /// </summary>
    public static PackedWeights[] TransformWeights(ReadOnlySpan<float> w, int outChannels, int inChannels, ReadOnlySpan<float> scale, int tile = 4)
    {
        double[,] G = tile switch
        {
            // F(4,3): rows are the interpolation points 0, −1, 1, −2 (as 1/2), 2 and ∞.
            4 => new[,] { { 1 / 4.0, 0, 0 }, { -1 / 6.0, -1 / 6.0, -1 / 6.0 }, { -1 / 6.0, 1 / 6.0, -1 / 6.0 },
                          { 1 / 24.0, 1 / 12.0, 1 / 6.0 }, { 1 / 24.0, -1 / 12.0, 1 / 6.0 }, { 0, 0, 1 } },
            // F(2,3): points 0, 1, −1 and ∞.
            2 => new[,] { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } },
            _ => throw new ArgumentOutOfRangeException(nameof(tile), tile, "Winograd tiles are 2 or 4"),
        };
        int window = tile + 2, points = window * window;
        // Written straight into the packed panels ([ic][NR lanes] per panel of NR output channels), with no unpacked
        // copy: at 512 channels that copy is 36 MB, which the process's peak memory would keep.
        var u = new PackedWeights[points];
        for (int p = 0; p < points; p++) u[p] = new PackedWeights(outChannels, 1, inChannels, PackedGemm.NR);
        int nr = PackedGemm.NR, panelSize = u[0].PanelSize;
        var gg = new double[window, 3];
        for (int oc = 0; oc < outChannels; oc++)
            for (int ic = 0; ic < inChannels; ic++)
            {
                int o = (oc * inChannels + ic) * 9;
                double s = scale.IsEmpty ? 1 : scale[oc];
                for (int i = 0; i < window; i++)
                    for (int j = 0; j < 3; j++)
                        gg[i, j] = G[i, 0] * w[o + j] + G[i, 1] * w[o + 3 + j] + G[i, 2] * w[o + 6 + j];
                long at = (long)(oc / nr) * panelSize + (long)ic * nr + oc % nr;
                for (int i = 0; i < window; i++)
                    for (int j = 0; j < window; j++)
                        u[i * window + j].Data.Pointer[at] = (float)(s * (gg[i, 0] * G[j, 0] + gg[i, 1] * G[j, 1] + gg[i, 2] * G[j, 2]));
            }
        return u;
    }

    public static int TileCount(in ConvGeometry g, int batch, int tile = 4) =>
        batch * ((g.OutHeight + tile - 1) / tile) * ((g.OutWidth + tile - 1) / tile);

    /// <summary>
    /// y (N,H,W,OC) = conv3x3(x) + bias (+ residual) (then ReLU), with u from <see cref="TransformWeights"/> (its
    /// length, 36 or 16, says the tile size). v and m are scratch of points·tiles·IC and points·tiles·OC floats, or
    /// null where <see cref="TakesChunks"/>; rowOffsets[t] = t·IC for t &lt; tiles.
    /// </summary>
    public static void Forward(in ConvGeometry g, int batch, PackedWeights[] u, float* bias, int[] rowOffsets,
        float* x, float* y, float* residual, bool relu, float* v, float* m)
    {
        int tile = u.Length switch
        {
            36 => 4,
            16 => 2,
            _ => throw new ArgumentException($"{u.Length} transformed weight matrices: Winograd takes 36 (F(4x4,3x3)) or 16 (F(2x2,3x3))"),
        };
        if (tile == 4) Run<F4>(g, batch, tile, u, bias, rowOffsets, x, y, residual, relu, v, m);
        else Run<F2>(g, batch, tile, u, bias, rowOffsets, x, y, residual, relu, v, m);
    }

    // Input transform, the batched products, output transform, for one tile size at this machine's vector width.
    private static void Run<TF>(in ConvGeometry g, int batch, int tile, PackedWeights[] u, float* bias, int[] rowOffsets,
        float* x, float* y, float* residual, bool relu, float* v, float* m) where TF : ITileTransform
    {
        int tiles = TileCount(g, batch, tile), ic = g.InChannels, oc = g.OutChannels;
        if (TakesChunks(g, batch, tile) || v == null || m == null)
        {
            RunChunked<TF>(g, batch, u, bias, rowOffsets, x, y, residual, relu);
            return;
        }
        int th = (g.OutHeight + tile - 1) / tile, tw = (g.OutWidth + tile - 1) / tile;
        nint xp = (nint)x, vp = (nint)v, mp = (nint)m, bp = (nint)bias, rp = (nint)residual, yp = (nint)y;
        var geometry = g;
        // One task per row of tiles; V and M of the whole batch, so each U_p is read once.
        WorkerPool.For(batch * th, row => Transforms<TF>.Input(geometry, (float*)xp, row * tw, tw, (float*)vp + (long)row * tw * ic, (long)tiles * ic));
        PackedGemm.RunBatched(u.Select(w => w.AsPanels()).ToArray(), v, (long)tiles * ic, rowOffsets, tiles, m, (long)tiles * oc, oc);
        bool streaming = StreamsOutput(g, batch, y);
        WorkerPool.For(batch * th, row => Transforms<TF>.Output(geometry, (float*)mp + (long)row * tw * oc, (long)tiles * oc, (float*)bp, (float*)rp, relu,
            (float*)yp, row * tw, tw, streaming));
    }

    /// <summary>
    /// Transformed weights up to this size take <see cref="RunChunked"/>: each thread runs the three stages on its own
    /// chunks of tiles, V and M in its L2 beside U (64 channels with F(4x4): 590 KB), instead of the stages one after
    /// another over the whole batch, whose V and M each thread mostly reads from the other's cache or from memory.
    /// Larger U would be re-read from further out per chunk. At batch 1 too (an earlier bound on V and M, 16 MB, kept
    /// it out): `bench/run.sh --ab Winograd.ChunkedWeightBytes=0,1048576 --ab-work r18-b1 --ab-layers --rounds 60`
    /// gave resnet18's four 64-channel 56x56 layers 0.86–0.88x and its whole pass 0.983x (noise floor 1.004); the next
    /// Winograd layer, the first to touch the plan's shared V and M in the pass, 1.14x. Internal: 0 turns the chunked
    /// path off, to measure it.
    /// </summary>
    internal static long ChunkedWeightBytes = 1 << 20;
    private const int ChunkBytes = 1 << 20;   // V and M of one chunk of tiles

    /// <summary>
    /// Whether <see cref="Forward"/> runs this convolution in per-thread chunks of tiles, with scratch of its own: its
    /// v and m may then be null (an inference plan need not size them for it). Null scratch always takes the chunks,
    /// so a plan made under one setting of <see cref="ChunkedWeightBytes"/> stays safe under another.
    /// </summary>
    public static bool TakesChunks(in ConvGeometry g, int batch, int tile)
    {
        int points = Points(tile);
        return ChunkedWeightBytes > 0 && (long)points * g.InChannels * g.OutChannels * sizeof(float) <= ChunkedWeightBytes;
    }

    [ThreadStatic] private static AlignedBuffer? _chunkIn, _chunkOut;

    /// <summary>
    /// Whether the output transform writes y with non-temporal stores, by the packed product's rule
    /// (<see cref="PackedGemm.StreamsOutput"/>: outputs of 4 MB and up, rows vector-aligned). resnet50 at batch 16 (6.4 and 12.8 MB
    /// outputs): its Winograd layers 0.90–0.95x, the 1x1 convolutions that read them level, the pass 0.963x (noise
    /// floor 0.973): `bench/run.sh --ab Winograd.StreamOutputs=false,true --ab-work r50-b16 --ab-layers`; alone,
    /// `--ab-work winograd:128,28,16,4` 0.92x.
    /// </summary>
    private static bool StreamsOutput(in ConvGeometry g, int batch, float* y) =>
        StreamOutputs && PackedGemm.StreamsOutput((long)batch * g.OutImage * sizeof(float), y, g.OutChannels);

    /// <summary>The output transform's non-temporal stores (on by default; off only to measure them).</summary>
    internal static bool StreamOutputs = true;

    /// <summary>
    /// The three stages per chunk of tiles on one thread, V and M in the thread's L2: resnet50's 64-channel layers at
    /// batch 16 otherwise write and read 29 MB of V and as much of M through memory.
    /// </summary>
    private static void RunChunked<TF>(in ConvGeometry g, int batch, PackedWeights[] u, float* bias, int[] rowOffsets,
        float* x, float* y, float* residual, bool relu) where TF : ITileTransform
    {
        int tile = TF.Tile, tiles = TileCount(g, batch, tile), ic = g.InChannels, oc = g.OutChannels, points = Points(tile);
        // Whole 6-row tiles of the micro-kernel, and at least two chunks per thread so the threads stay balanced.
        const int mr = PackedGemm.MR;
        int fits = (int)(ChunkBytes / ((long)points * (ic + oc) * sizeof(float))) / mr * mr;
        int share = ((tiles + 2 * Engine.Threads - 1) / (2 * Engine.Threads) + mr - 1) / mr * mr;
        int chunk = Math.Max(mr, Math.Min(fits, share));
        int chunks = (tiles + chunk - 1) / chunk;
        var panels = u.Select(w => w.AsPanels()).ToArray();
        var geometry = g;
        nint xp = (nint)x, bp = (nint)bias, rp = (nint)residual, yp = (nint)y;
        bool streaming = StreamsOutput(g, batch, y);
        WorkerPool.For(chunks, c =>
        {
            int first = c * chunk, count = Math.Min(chunk, tiles - first);
            var v = NchwConv.Scratch(ref _chunkIn, points * chunk * geometry.InChannels);
            var m = NchwConv.Scratch(ref _chunkOut, points * chunk * geometry.OutChannels);
            Transforms<TF>.Input(geometry, (float*)xp, first, count, v.Pointer, (long)count * geometry.InChannels);
            fixed (int* offsets = rowOffsets)
                for (int p = 0; p < points; p++)
                    PackedGemm.RunSerial(panels[p], v.Pointer + (long)p * count * geometry.InChannels, offsets, count,
                        m.Pointer + (long)p * count * geometry.OutChannels, geometry.OutChannels);
            Transforms<TF>.Output(geometry, m.Pointer, (long)count * geometry.OutChannels, (float*)bp, (float*)rp, relu, (float*)yp, first, count, streaming);
        });
    }

    // The transforms at this machine's vector width.
    private static class Transforms<TF> where TF : ITileTransform
    {
        public static void Input(in ConvGeometry g, float* x, int first, int count, float* v, long pointStride)
        {
            if (UnrolledTransforms && PackedGemm.NR == 64) UnrolledInput<TF, Ops512, Vector512<float>>(g, x, first, count, v, pointStride);
            else if (UnrolledTransforms && PackedGemm.NR == 16) UnrolledInput<TF, Ops256, Vector256<float>>(g, x, first, count, v, pointStride);
            else if (UnrolledTransforms) UnrolledInput<TF, Ops128, Vector128<float>>(g, x, first, count, v, pointStride);
            else if (PackedGemm.NR == 64) InputTransform<TF, Ops512, Vector512<float>>(g, x, first, count, v, pointStride);
            else if (PackedGemm.NR == 16) InputTransform<TF, Ops256, Vector256<float>>(g, x, first, count, v, pointStride);
            else InputTransform<TF, Ops128, Vector128<float>>(g, x, first, count, v, pointStride);
        }

        public static void Output(in ConvGeometry g, float* m, long pointStride, float* bias, float* residual, bool relu, float* y, int first, int count,
            bool streaming)
        {
            if (UnrolledTransforms && PackedGemm.NR == 64) UnrolledOutput<TF, Ops512, Vector512<float>>(g, m, pointStride, bias, residual, relu, y, first, count, streaming);
            else if (UnrolledTransforms && PackedGemm.NR == 16) UnrolledOutput<TF, Ops256, Vector256<float>>(g, m, pointStride, bias, residual, relu, y, first, count, streaming);
            else if (UnrolledTransforms) UnrolledOutput<TF, Ops128, Vector128<float>>(g, m, pointStride, bias, residual, relu, y, first, count, streaming);
            else if (PackedGemm.NR == 64) OutputTransform<TF, Ops512, Vector512<float>>(g, m, pointStride, bias, residual, relu, y, first, count, streaming);
            else if (PackedGemm.NR == 16) OutputTransform<TF, Ops256, Vector256<float>>(g, m, pointStride, bias, residual, relu, y, first, count, streaming);
            else OutputTransform<TF, Ops128, Vector128<float>>(g, m, pointStride, bias, residual, relu, y, first, count, streaming);
            if (streaming) Sse.StoreFence();
        }
    }

    /// <summary>
    /// The transforms of one tile size: Bᵀ on Window values read at srcStride (written at dstStride), and Aᵀ from
    /// Window values to Tile. Struct type arguments, so each size compiles to its own straight-line code.
    /// </summary>
    private interface ITileTransform
    {
        static abstract int Tile { get; }
        static abstract void Input<TOps, TV>(TV* src, int srcStride, TV* dst, int dstStride) where TOps : IVectorOps<TV> where TV : unmanaged;
        static abstract void Output<TOps, TV>(TV* src, int srcStride, TV* dst, int dstStride) where TOps : IVectorOps<TV> where TV : unmanaged;
    }

    private readonly struct F4 : ITileTransform
    {
        public static int Tile => 4;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Input<TOps, TV>(TV* s, int ss, TV* o, int stride) where TOps : IVectorOps<TV> where TV : unmanaged =>
            In4<TOps, TV>(s[0], s[ss], s[2 * ss], s[3 * ss], s[4 * ss], s[5 * ss], out o[0], out o[stride], out o[2 * stride], out o[3 * stride],
                out o[4 * stride], out o[5 * stride]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Output<TOps, TV>(TV* s, int ss, TV* o, int stride) where TOps : IVectorOps<TV> where TV : unmanaged =>
            Out4<TOps, TV>(s[0], s[ss], s[2 * ss], s[3 * ss], s[4 * ss], s[5 * ss], out o[0], out o[stride], out o[2 * stride], out o[3 * stride]);
    }

    private readonly struct F2 : ITileTransform
    {
        public static int Tile => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Input<TOps, TV>(TV* s, int ss, TV* o, int stride) where TOps : IVectorOps<TV> where TV : unmanaged =>
            In2<TOps, TV>(s[0], s[ss], s[2 * ss], s[3 * ss], out o[0], out o[stride], out o[2 * stride], out o[3 * stride]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Output<TOps, TV>(TV* s, int ss, TV* o, int stride) where TOps : IVectorOps<TV> where TV : unmanaged =>
            Out2<TOps, TV>(s[0], s[ss], s[2 * ss], s[3 * ss], out o[0], out o[stride]);
    }

    // V[ξν][tile][c] = (Bᵀ d B)[ξ][ν] for the input tile at (T·ty − 1, T·tx − 1), zero outside the image, for tiles
    // [first, first + count) (numbered image by image, row by row), at v + (tile − first)·IC + ξν·pointStride.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputTransform<TF, TOps, TV>(ConvGeometry g, float* x, int first, int count, float* v, long pointStride)
        where TF : ITileTransform where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int T = TF.Tile, window = T + 2, points = window * window;
        int th = (g.OutHeight + T - 1) / T, tw = (g.OutWidth + T - 1) / T, ic = g.InChannels, L = TOps.Lanes;
        TV* d = stackalloc TV[36];
        TV* t = stackalloc TV[36];
        for (int tile = first; tile < first + count; tile++)
        {
            int n = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
            int y0 = ty * T - 1, x0 = tx * T - 1;
            bool interior = y0 >= 0 && x0 >= 0 && y0 + window <= g.Height && x0 + window <= g.Width;
            float* origin = x + (((long)n * g.Height + y0) * g.Width + x0) * ic;
            long rowStride = (long)g.Width * ic;
            for (int c = 0; c < ic; c += L)
            {
                if (interior)
                    for (int i = 0; i < window; i++)
                    {
                        float* r = origin + i * rowStride + c;
                        for (int j = 0; j < window; j++) d[i * window + j] = TOps.Load(r + j * ic);
                    }
                else
                    for (int i = 0; i < window; i++)
                    {
                        int iy = y0 + i;
                        for (int j = 0; j < window; j++)
                        {
                            int ix = x0 + j;
                            d[i * window + j] = (uint)iy < (uint)g.Height && (uint)ix < (uint)g.Width
                                ? TOps.Load(origin + i * rowStride + (long)j * ic + c) : TOps.Zero;
                        }
                    }
                for (int j = 0; j < window; j++) TF.Input<TOps, TV>(d + j, window, t + j, window);               // t = Bᵀ d
                for (int i = 0; i < window; i++) TF.Input<TOps, TV>(t + i * window, 1, d + i * window, 1);      // d = t B
                float* dst = v + (long)(tile - first) * ic + c;
                for (int p = 0; p < points; p++) TOps.Store(dst + p * pointStride, d[p]);
            }
        }
    }

    // y tile = Aᵀ M A (+ bias, + residual, ReLU), cropped at the image edge, for tiles [first, first + count) with M
    // of tile `first` at m (point stride pointStride).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OutputTransform<TF, TOps, TV>(ConvGeometry g, float* m, long pointStride, float* bias, float* residual, bool relu, float* y,
        int first, int count, bool streaming) where TF : ITileTransform where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int T = TF.Tile, window = T + 2, points = window * window;
        int oh = g.OutHeight, ow = g.OutWidth, th = (oh + T - 1) / T, tw = (ow + T - 1) / T, oc = g.OutChannels, L = TOps.Lanes;
        TV* s = stackalloc TV[36];
        TV* t = stackalloc TV[24];
        TV* o = stackalloc TV[4];
        for (int tile = first; tile < first + count; tile++)
        {
            int n = tile / (th * tw), ty = tile / tw % th, tx = tile % tw;
            for (int c = 0; c < oc; c += L)
            {
                float* src = m + (long)(tile - first) * oc + c;
                for (int p = 0; p < points; p++) s[p] = TOps.Load(src + p * pointStride);
                for (int j = 0; j < window; j++) TF.Output<TOps, TV>(s + j, window, t + j, window);   // t (T x window) = Aᵀ s
                TV b = bias == null ? TOps.Zero : TOps.Load(bias + c);
                for (int i = 0; i < T; i++)
                {
                    int yy = ty * T + i;
                    if (yy >= oh) break;
                    TF.Output<TOps, TV>(t + i * window, 1, o, 1);   // row i of t A
                    for (int j = 0; j < T; j++)
                    {
                        int xx = tx * T + j;
                        if (xx >= ow) break;
                        long at = (((long)n * oh + yy) * ow + xx) * oc + c;
                        TV val = TOps.Add(o[j], b);
                        if (residual != null) val = TOps.Add(val, TOps.Load(residual + at));
                        if (relu) val = TOps.Max(val, TOps.Zero);
                        if (streaming) TOps.StoreStreaming(y + at, val);
                        else TOps.Store(y + at, val);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Whether the transforms run as <see cref="UnrolledInput{TF, TOps, TV}"/> and <see cref="UnrolledOutput{TF, TOps, TV}"/>
    /// (on by default; off only to measure them and to test them against the looped ones). `bench/run.sh --ab
    /// Winograd.UnrolledTransforms=false,true --ab-work winograd:64,56,1,4 --rounds 150`: 0.85x (128 channels at 28x28
    /// 0.93x, 256 at 14x14 with F(2x2) 0.95x); resnet18 at batch 1 0.959x, resnet50 0.988x (noise floors 1.01).
    /// </summary>
    internal static bool UnrolledTransforms = true;

    // F(4,3)'s Bᵀ on six values and Aᵀ on six, in registers (F4.Input and F4.Output apply them through pointers).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void In4<TOps, TV>(TV d0, TV d1, TV d2, TV d3, TV d4, TV d5, out TV o0, out TV o1, out TV o2, out TV o3, out TV o4, out TV o5)
        where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV four = TOps.Broadcast(4f), five = TOps.Broadcast(5f), two = TOps.Broadcast(2f);
        TV d4m4d2 = TOps.Add(d4, TOps.Multiply(TOps.Broadcast(-4f), d2));
        TV d3m4d1 = TOps.Add(d3, TOps.Multiply(TOps.Broadcast(-4f), d1));
        TV d4md2 = TOps.Add(d4, TOps.Multiply(TOps.Broadcast(-1f), d2));
        TV d3md1 = TOps.Add(d3, TOps.Multiply(TOps.Broadcast(-1f), d1));
        o0 = TOps.Add(TOps.MultiplyAdd(four, d0, TOps.Multiply(five, TOps.Multiply(TOps.Broadcast(-1f), d2))), d4);  // 4d0 − 5d2 + d4
        o1 = TOps.Add(d4m4d2, d3m4d1);                                       // −4d1 − 4d2 + d3 + d4
        o2 = TOps.Add(d4m4d2, TOps.Multiply(TOps.Broadcast(-1f), d3m4d1));   // 4d1 − 4d2 − d3 + d4
        o3 = TOps.MultiplyAdd(two, d3md1, d4md2);                            // −2d1 − d2 + 2d3 + d4
        o4 = TOps.MultiplyAdd(TOps.Broadcast(-2f), d3md1, d4md2);            // 2d1 − d2 − 2d3 + d4
        o5 = TOps.Add(TOps.MultiplyAdd(four, d1, TOps.Multiply(TOps.Broadcast(-5f), d3)), d5);  // 4d1 − 5d3 + d5
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Out4<TOps, TV>(TV m0, TV m1, TV m2, TV m3, TV m4, TV m5, out TV o0, out TV o1, out TV o2, out TV o3)
        where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV a = TOps.Add(m1, m2), b = TOps.Add(m1, TOps.Multiply(TOps.Broadcast(-1f), m2));
        TV c = TOps.Add(m3, m4), d = TOps.Add(m3, TOps.Multiply(TOps.Broadcast(-1f), m4));
        o0 = TOps.Add(TOps.Add(m0, a), c);                        // m0 + m1 + m2 + m3 + m4
        o1 = TOps.MultiplyAdd(TOps.Broadcast(2f), d, b);          // m1 − m2 + 2(m3 − m4)
        o2 = TOps.MultiplyAdd(TOps.Broadcast(4f), c, a);          // m1 + m2 + 4(m3 + m4)
        o3 = TOps.Add(TOps.MultiplyAdd(TOps.Broadcast(8f), d, b), m5);  // m1 − m2 + 8(m3 − m4) + m5
    }

    // F(2,3)'s, likewise.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void In2<TOps, TV>(TV d0, TV d1, TV d2, TV d3, out TV o0, out TV o1, out TV o2, out TV o3)
        where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV minus = TOps.Broadcast(-1f);
        o0 = TOps.MultiplyAdd(minus, d2, d0);   // d0 − d2
        o1 = TOps.Add(d1, d2);                  // d1 + d2
        o2 = TOps.MultiplyAdd(minus, d1, d2);   // d2 − d1
        o3 = TOps.MultiplyAdd(minus, d3, d1);   // d1 − d3
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Out2<TOps, TV>(TV m0, TV m1, TV m2, TV m3, out TV o0, out TV o1) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV minus = TOps.Broadcast(-1f);
        o0 = TOps.Add(TOps.Add(m0, m1), m2);                                 // m0 + m1 + m2
        o1 = TOps.MultiplyAdd(minus, m3, TOps.MultiplyAdd(minus, m2, m1));   // m1 − m2 − m3
    }

    // Row i of a window column at `column`: zero where bit i of `rows` is clear (outside the image).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV At<TOps, TV>(float* column, long rowStride, int i, int rows) where TOps : IVectorOps<TV> where TV : unmanaged =>
        (rows & (1 << i)) != 0 ? TOps.Load(column + i * rowStride) : TOps.Zero;

    /// <summary>
    /// <see cref="InputTransform{TF, TOps, TV}"/> with the window's rows and columns in straight-line code: the same
    /// operations in the same order, so the same values, without the loops over the window that the JIT does not
    /// unroll (their index arithmetic and spills cost more than the transform itself).
    /// </summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void UnrolledInput<TF, TOps, TV>(ConvGeometry g, float* x, int first, int count, float* v, long pointStride)
        where TF : ITileTransform where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int T = TF.Tile, window = T + 2;
        int th = (g.OutHeight + T - 1) / T, tw = (g.OutWidth + T - 1) / T, ic = g.InChannels, L = TOps.Lanes;
        TV* t = stackalloc TV[36];   // Bᵀ d: window rows of window values
        long rowStride = (long)g.Width * ic, ps = pointStride;
        int n = first / (th * tw), ty = first / tw % th, tx = first % tw;
        for (int tile = first; tile < first + count; tile++)
        {
            int y0 = ty * T - 1, x0 = tx * T - 1;
            float* origin = x + (((long)n * g.Height + y0) * g.Width + x0) * ic;
            int rows = 0, columns = 0;   // bit i: row (column) i of the window is inside the image
            for (int i = 0; i < window; i++)
            {
                if ((uint)(y0 + i) < (uint)g.Height) rows |= 1 << i;
                if ((uint)(x0 + i) < (uint)g.Width) columns |= 1 << i;
            }
            bool inside = rows == (1 << window) - 1 && columns == (1 << window) - 1;
            float* dst = v + (long)(tile - first) * ic;
            for (int c = 0; c < ic; c += L)
            {
                float* d = origin + c;
                float* o = dst + c;
                if (T == 4)
                {
                    if (inside)
                        for (int j = 0; j < 6; j++)   // column j of Bᵀ d
                        {
                            float* dj = d + j * (long)ic;
                            In4<TOps, TV>(TOps.Load(dj), TOps.Load(dj + rowStride), TOps.Load(dj + 2 * rowStride), TOps.Load(dj + 3 * rowStride),
                                TOps.Load(dj + 4 * rowStride), TOps.Load(dj + 5 * rowStride),
                                out t[j], out t[6 + j], out t[12 + j], out t[18 + j], out t[24 + j], out t[30 + j]);
                        }
                    else
                        for (int j = 0; j < 6; j++)
                        {
                            float* dj = d + j * (long)ic;
                            int r = (columns & (1 << j)) != 0 ? rows : 0;
                            In4<TOps, TV>(At<TOps, TV>(dj, rowStride, 0, r), At<TOps, TV>(dj, rowStride, 1, r), At<TOps, TV>(dj, rowStride, 2, r),
                                At<TOps, TV>(dj, rowStride, 3, r), At<TOps, TV>(dj, rowStride, 4, r), At<TOps, TV>(dj, rowStride, 5, r),
                                out t[j], out t[6 + j], out t[12 + j], out t[18 + j], out t[24 + j], out t[30 + j]);
                        }
                    for (int i = 0; i < 6; i++, o += 6 * ps)   // row i of (Bᵀ d) B: points 6i .. 6i + 5
                    {
                        TV* ti = t + i * 6;
                        In4<TOps, TV>(ti[0], ti[1], ti[2], ti[3], ti[4], ti[5], out TV e0, out TV e1, out TV e2, out TV e3, out TV e4, out TV e5);
                        TOps.Store(o, e0); TOps.Store(o + ps, e1); TOps.Store(o + 2 * ps, e2);
                        TOps.Store(o + 3 * ps, e3); TOps.Store(o + 4 * ps, e4); TOps.Store(o + 5 * ps, e5);
                    }
                }
                else
                {
                    for (int j = 0; j < 4; j++)
                    {
                        float* dj = d + j * (long)ic;
                        int r = (columns & (1 << j)) != 0 ? rows : 0;
                        if (inside)
                            In2<TOps, TV>(TOps.Load(dj), TOps.Load(dj + rowStride), TOps.Load(dj + 2 * rowStride), TOps.Load(dj + 3 * rowStride),
                                out t[j], out t[4 + j], out t[8 + j], out t[12 + j]);
                        else
                            In2<TOps, TV>(At<TOps, TV>(dj, rowStride, 0, r), At<TOps, TV>(dj, rowStride, 1, r), At<TOps, TV>(dj, rowStride, 2, r),
                                At<TOps, TV>(dj, rowStride, 3, r), out t[j], out t[4 + j], out t[8 + j], out t[12 + j]);
                    }
                    for (int i = 0; i < 4; i++, o += 4 * ps)
                    {
                        TV* ti = t + i * 4;
                        In2<TOps, TV>(ti[0], ti[1], ti[2], ti[3], out TV e0, out TV e1, out TV e2, out TV e3);
                        TOps.Store(o, e0); TOps.Store(o + ps, e1); TOps.Store(o + 2 * ps, e2); TOps.Store(o + 3 * ps, e3);
                    }
                }
            }
            if (++tx == tw) { tx = 0; if (++ty == th) { ty = 0; n++; } }
        }
    }

    /// <summary><see cref="OutputTransform{TF, TOps, TV}"/> in straight-line code over the window, as <see cref="UnrolledInput{TF, TOps, TV}"/>.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void UnrolledOutput<TF, TOps, TV>(ConvGeometry g, float* m, long pointStride, float* bias, float* residual, bool relu, float* y,
        int first, int count, bool streaming) where TF : ITileTransform where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int T = TF.Tile;
        int oh = g.OutHeight, ow = g.OutWidth, th = (oh + T - 1) / T, tw = (ow + T - 1) / T, oc = g.OutChannels, L = TOps.Lanes;
        TV* t = stackalloc TV[24];   // Aᵀ s: T rows of window values
        TV* o = stackalloc TV[4];
        long ps = pointStride;
        int n = first / (th * tw), ty = first / tw % th, tx = first % tw;
        for (int tile = first; tile < first + count; tile++)
        {
            int rowsHere = Math.Min(T, oh - ty * T), colsHere = Math.Min(T, ow - tx * T);
            long firstPixel = ((long)n * oh + ty * T) * ow + tx * T;
            for (int c = 0; c < oc; c += L)
            {
                float* src = m + (long)(tile - first) * oc + c;
                TV b = bias == null ? TOps.Zero : TOps.Load(bias + c);
                if (T == 4)
                {
                    for (int j = 0; j < 6; j++)
                    {
                        float* s = src + j * ps;
                        Out4<TOps, TV>(TOps.Load(s), TOps.Load(s + 6 * ps), TOps.Load(s + 12 * ps), TOps.Load(s + 18 * ps), TOps.Load(s + 24 * ps),
                            TOps.Load(s + 30 * ps), out t[j], out t[6 + j], out t[12 + j], out t[18 + j]);
                    }
                }
                else
                {
                    for (int j = 0; j < 4; j++)
                    {
                        float* s = src + j * ps;
                        Out2<TOps, TV>(TOps.Load(s), TOps.Load(s + 4 * ps), TOps.Load(s + 8 * ps), TOps.Load(s + 12 * ps), out t[j], out t[4 + j]);
                    }
                }
                for (int i = 0; i < rowsHere; i++)
                {
                    if (T == 4) { TV* ti = t + i * 6; Out4<TOps, TV>(ti[0], ti[1], ti[2], ti[3], ti[4], ti[5], out o[0], out o[1], out o[2], out o[3]); }
                    else { TV* ti = t + i * 4; Out2<TOps, TV>(ti[0], ti[1], ti[2], ti[3], out o[0], out o[1]); }
                    long at = (firstPixel + (long)i * ow) * oc + c;
                    for (int j = 0; j < colsHere; j++, at += oc)
                    {
                        TV val = TOps.Add(o[j], b);
                        if (residual != null) val = TOps.Add(val, TOps.Load(residual + at));
                        if (relu) val = TOps.Max(val, TOps.Zero);
                        if (streaming) TOps.StoreStreaming(y + at, val);
                        else TOps.Store(y + at, val);
                    }
                }
            }
            if (++tx == tw) { tx = 0; if (++ty == th) { ty = 0; n++; } }
        }
    }
}
