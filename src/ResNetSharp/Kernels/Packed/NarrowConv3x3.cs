using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// 3x3 stride-1 padding-1 convolutions with few channels (at most 16 each side, in eights) on AVX-512, direct:
/// resnet20's 16-channel layers, forward and input gradient. On the zero-padded image every tap of a row of outputs is
/// a contiguous row again, so outputs run in the vector lanes over the padded rows' width ("wide" positions
/// q = y·(W + 1) + x, one junk column a row: <see cref="PlaneSize"/>), 48 at a time, and 8 output channels accumulate
/// them in 24 registers: per input channel and tap, 3 loads and 8 broadcast weights feed 24 multiply-adds. With 16
/// channels, Winograd F(4x4)'s products are short (16-channel reductions) and its transforms, not its multiplies, take
/// the time; the matrix product over the same views ran tiles of 6 + 6 + 4 channel rows, then copied its wide rows out.
/// `bench/run.sh --ab NarrowConv3x3.Enabled=false,true --ab-work r20-train --ab-layers --rounds 30` (against
/// Winograd): the six 16-channel layers' forward 0.78–0.86x, their backward (dx here, dw as before) 0.88–0.97x, the
/// step 0.969x (noise floor 0.995). With rows of W + 2 (two junk columns, 18 passes of 48 for 784 outputs instead of
/// 17) the step was 0.961x and 0.984x in two runs.
/// </summary>
internal static unsafe class NarrowConv3x3
{
    /// <summary>Whether this kernel takes the convolutions it supports (on by default; off only to test and measure it).</summary>
    internal static bool Enabled = true;

    public const int MaxChannels = 16;
    private const int Group = 8;         // output channels per pass
    private const int Block = 16;        // wide positions per vector
    private const int Run = 3 * Block;   // wide positions per pass

    public static bool Supports(in ConvGeometry g) =>
        Enabled && Avx512F.IsSupported && g.KernelH == 3 && g.KernelW == 3 && g.Stride == 1 && g.Padding == 1
        && g.InChannels % Group == 0 && g.OutChannels % Group == 0 && g.InChannels <= MaxChannels && g.OutChannels <= MaxChannels;

    /// <summary>
    /// y[n, o] = Σ_c Σ_t w[o, c, t]·x[n, c, y − 1 + kh, x − 1 + kw] (+ bias[o] after), added channel by channel and
    /// tap by tap from zero: the matrix product's order over its reduction (c, kh, kw), so the same bits.
    /// </summary>
    public static void Forward(in ConvGeometry g, int batch, float* x, float* w, float* bias, float* y)
    {
        int ic = g.InChannels, oc = g.OutChannels;
        float* packed = PackedScratch(oc / Group, ic);
        for (int o = 0; o < oc; o++)
            for (int c = 0; c < ic; c++)
                for (int t = 0; t < 9; t++)
                    packed[(((long)(o / Group) * ic + c) * 9 + t) * Group + o % Group] = w[((long)o * ic + c) * 9 + t];
        Convolve(g.InChannels, g.OutChannels, g.Height, g.Width, batch, x, packed, bias, y);
    }

    /// <summary>
    /// dx[n, c] = Σ_o Σ_t w[o, c, 8 − t]·dy[n, o, y − 1 + kh, x − 1 + kw]: the correlation of dy with the weights
    /// rotated by 180° and transposed, in the order of the direct path's product (o, kh, kw), so the same bits.
    /// </summary>
    public static void InputGradient(in ConvGeometry g, int batch, float* dy, float* w, float* dx)
    {
        int ic = g.InChannels, oc = g.OutChannels;
        float* packed = PackedScratch(ic / Group, oc);
        for (int c = 0; c < ic; c++)
            for (int o = 0; o < oc; o++)
                for (int t = 0; t < 9; t++)
                    packed[(((long)(c / Group) * oc + o) * 9 + t) * Group + c % Group] = w[((long)o * ic + c) * 9 + 8 - t];
        Convolve(oc, ic, g.Height, g.Width, batch, dy, packed, null, dx);
    }

    [ThreadStatic] private static AlignedBuffer? _packedWeights;

    // Scratch for weights as [group][input channel][tap][8]: a pass's 8 channels of one tap are 32 contiguous bytes.
    // Repacked every call (training changes them), into the calling thread's scratch.
    private static float* PackedScratch(int groups, int inChannels) =>
        NchwConv.Scratch(ref _packedWeights, groups * inChannels * 9 * Group).Pointer;

    private static void Convolve(int inChannels, int outChannels, int h, int w, int batch, float* x, float* packed, float* bias, float* y)
    {
        var blocks = BlocksFor(h, w);
        var g = new ConvGeometry(inChannels, h, w, outChannels, 3, 3, 1, 1);
        nint xs = (nint)x, ys = (nint)y, bs = (nint)bias, ws = (nint)packed;
        WorkerPool.For(batch, n =>
        {
            float* padded = Pad(g.InChannels, g.Height, g.Width, (float*)xs + (long)n * g.InImage);
            Image(g, padded, (float*)ws, (float*)bs, (float*)ys + (long)n * g.OutImage, blocks);
        });
    }

    [ThreadStatic] private static AlignedBuffer? _padded;
    [ThreadStatic] private static (int Channels, int Height, int Width) _paddedShape;

    /// <summary>
    /// One image zero-padded by one pixel into the calling thread's scratch, with slack after it for the junk lanes'
    /// reads. The border is cleared only when the shape changes (only the interior is written); each row is copied in
    /// vectors, its tail under a mask: with a copy call per 28-float row, the layer took 6.08 ms against 4.64 with the
    /// padding skipped (one thread, a scratch harness).
    /// </summary>
    private static float* Pad(int channels, int h, int w, float* x)
    {
        int stride = w + 1, plane = PlaneSize(h, w);
        int length = channels * plane + Run + 2 * stride + 2 + Block;
        if (_padded is null || _padded.Length < length || _paddedShape != (channels, h, w))
        {
            _padded = NchwConv.Scratch(ref _padded, length);
            _padded.Span.Clear();
            _paddedShape = (channels, h, w);
        }
        float* padded = _padded.Pointer;
        int tail = w % Block;
        var tailMask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(tail)).AsSingle();
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++)
            {
                float* src = x + ((long)c * h + y) * w, dst = padded + (long)c * plane + 1 + (y + 1) * stride;
                int i = 0;
                for (; i + Block <= w; i += Block) Vector512.Load(src + i).Store(dst + i);
                if (tail > 0) Avx512F.MaskStore(dst + i, tailMask, Avx512F.MaskLoad(src + i, tailMask, Vector512<float>.Zero));
            }
        return padded + 1;
    }

    // Floats per padded channel: a zero, then H + 2 rows of W + 1 (the zero row above, the image's rows each followed
    // by one zero column, the zero row below). Each row's zero column is also the next row's left padding, and the
    // plane's leading zero the first row's, so a row of outputs has one junk column instead of two.
    private static int PlaneSize(int h, int w) => 1 + (h + 2) * (w + 1);

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Image(in ConvGeometry g, float* padded, float* w, float* bias, float* y, Block16[] blocks)
    {
        int ic = g.InChannels, oc = g.OutChannels, stride = g.Width + 1, plane = PlaneSize(g.Height, g.Width), outPlane = g.Height * g.Width;
        // Tap t of every input channel, as one offset from a pass's first wide position: channel c, row kh, column kw.
        int steps = ic * 9;
        int* offsets = stackalloc int[steps];
        for (int c = 0; c < ic; c++)
            for (int t = 0; t < 9; t++) offsets[c * 9 + t] = c * plane + t / 3 * stride + t % 3 - 1;
        // Both groups of output channels per run of positions, while its rows of every channel are in L1.
        for (int b = 0; b < blocks.Length; b += 3)
        {
            for (int g0 = 0; g0 < oc; g0 += Group)
            {
                float* wg = w + (long)(g0 / Group) * steps * Group;
                var z = Vector512<float>.Zero;
                Vector512<float> a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z, a20 = z, a21 = z, a22 = z, a30 = z, a31 = z, a32 = z;
                Vector512<float> a40 = z, a41 = z, a42 = z, a50 = z, a51 = z, a52 = z, a60 = z, a61 = z, a62 = z, a70 = z, a71 = z, a72 = z;
                // Junk lanes (the padding column of each row, and past the last row) read on into the next row, the
                // next channel's plane or the scratch's slack: computed, never stored.
                float* at = padded + (long)b * Block;
                float* wt = wg;
                for (int s = 0; s < steps; s++, wt += Group)
                {
                    float* p = at + offsets[s];
                    var x0 = Vector512.Load(p); var x1 = Vector512.Load(p + Block); var x2 = Vector512.Load(p + 2 * Block);
                    var v = Vector512.Create(wt[0]);
                    a00 = Vector512.FusedMultiplyAdd(x0, v, a00); a01 = Vector512.FusedMultiplyAdd(x1, v, a01); a02 = Vector512.FusedMultiplyAdd(x2, v, a02);
                    v = Vector512.Create(wt[1]);
                    a10 = Vector512.FusedMultiplyAdd(x0, v, a10); a11 = Vector512.FusedMultiplyAdd(x1, v, a11); a12 = Vector512.FusedMultiplyAdd(x2, v, a12);
                    v = Vector512.Create(wt[2]);
                    a20 = Vector512.FusedMultiplyAdd(x0, v, a20); a21 = Vector512.FusedMultiplyAdd(x1, v, a21); a22 = Vector512.FusedMultiplyAdd(x2, v, a22);
                    v = Vector512.Create(wt[3]);
                    a30 = Vector512.FusedMultiplyAdd(x0, v, a30); a31 = Vector512.FusedMultiplyAdd(x1, v, a31); a32 = Vector512.FusedMultiplyAdd(x2, v, a32);
                    v = Vector512.Create(wt[4]);
                    a40 = Vector512.FusedMultiplyAdd(x0, v, a40); a41 = Vector512.FusedMultiplyAdd(x1, v, a41); a42 = Vector512.FusedMultiplyAdd(x2, v, a42);
                    v = Vector512.Create(wt[5]);
                    a50 = Vector512.FusedMultiplyAdd(x0, v, a50); a51 = Vector512.FusedMultiplyAdd(x1, v, a51); a52 = Vector512.FusedMultiplyAdd(x2, v, a52);
                    v = Vector512.Create(wt[6]);
                    a60 = Vector512.FusedMultiplyAdd(x0, v, a60); a61 = Vector512.FusedMultiplyAdd(x1, v, a61); a62 = Vector512.FusedMultiplyAdd(x2, v, a62);
                    v = Vector512.Create(wt[7]);
                    a70 = Vector512.FusedMultiplyAdd(x0, v, a70); a71 = Vector512.FusedMultiplyAdd(x1, v, a71); a72 = Vector512.FusedMultiplyAdd(x2, v, a72);
                }
                float* dst = y + (long)g0 * outPlane;
                float* bg = bias == null ? null : bias + g0;
                Store(dst, outPlane, bg, blocks, b, a00, a10, a20, a30, a40, a50, a60, a70);
                Store(dst, outPlane, bg, blocks, b + 1, a01, a11, a21, a31, a41, a51, a61, a71);
                Store(dst, outPlane, bg, blocks, b + 2, a02, a12, a22, a32, a42, a52, a62, a72);
            }
        }
    }

    // The 8 channels' values of one block: its valid lanes (plus the bias), packed together at the block's first output.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* dst, int outPlane, float* bias, Block16[] blocks, int b, Vector512<float> v0, Vector512<float> v1,
        Vector512<float> v2, Vector512<float> v3, Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7)
    {
        if (b >= blocks.Length) return;
        var block = blocks[b];
        if (bias != null)
        {
            v0 += Vector512.Create(bias[0]); v1 += Vector512.Create(bias[1]); v2 += Vector512.Create(bias[2]); v3 += Vector512.Create(bias[3]);
            v4 += Vector512.Create(bias[4]); v5 += Vector512.Create(bias[5]); v6 += Vector512.Create(bias[6]); v7 += Vector512.Create(bias[7]);
        }
        float* d = dst + block.Output;
        var mask = block.Valid;
        Avx512F.CompressStore(d, mask, v0); Avx512F.CompressStore(d + outPlane, mask, v1);
        Avx512F.CompressStore(d + 2 * outPlane, mask, v2); Avx512F.CompressStore(d + 3 * outPlane, mask, v3);
        Avx512F.CompressStore(d + 4 * outPlane, mask, v4); Avx512F.CompressStore(d + 5 * outPlane, mask, v5);
        Avx512F.CompressStore(d + 6 * outPlane, mask, v6); Avx512F.CompressStore(d + 7 * outPlane, mask, v7);
    }

    /// <summary>16 wide positions from block·16 on: which lanes are outputs (x &lt; W, y &lt; H), and the first one's output index.</summary>
    private readonly record struct Block16(int Output, Vector512<float> Valid);

    private static readonly Dictionary<(int, int), Block16[]> BlockTables = [];

    // A geometry's blocks, made once: every block of the wide rows. The last may hold only a junk lane (H·(W + 1)
    // one past a multiple of 16, as 1x16): its mask is empty and it stores nothing.
    private static Block16[] BlocksFor(int h, int w)
    {
        lock (BlockTables)
        {
            if (BlockTables.TryGetValue((h, w), out var known)) return known;
            int stride = w + 1, wide = h * stride, count = (wide + Block - 1) / Block;
            var blocks = new Block16[count];
            for (int b = 0; b < count; b++)
            {
                var (output, valid) = WideRows.Block(b * Block, wide, stride, w);
                blocks[b] = new Block16(Math.Max(0, output), valid);
            }
            return BlockTables[(h, w)] = blocks;
        }
    }
}

/// <summary>
/// Outputs computed along padded ("wide") rows, as the direct kernels lay them: position q = y·stride + x is output
/// y·width + x when x &lt; width, a junk column otherwise.
/// </summary>
internal static class WideRows
{
    /// <summary>
    /// The 16 positions from q0 (those below wide): the lanes that are outputs (all bits set), and the first one's
    /// output index, or −1 where none is. The outputs of a block are consecutive, so a compressed store of its valid
    /// lanes at that index writes them.
    /// </summary>
    public static (int Output, Vector512<float> Valid) Block(int q0, int wide, int stride, int width)
    {
        Span<int> lanes = stackalloc int[16];
        int first = -1;
        for (int j = 0; j < 16; j++)
        {
            int q = q0 + j;
            bool valid = q < wide && q % stride < width;
            lanes[j] = valid ? -1 : 0;
            if (valid && first < 0) first = q;
        }
        return (first < 0 ? -1 : first / stride * width + first % stride, Vector512.Create((ReadOnlySpan<int>)lanes).AsSingle());
    }
}
