using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// The forward pass of a 3x3 stride-2 convolution with few channels (resnet20's downsampling layers, 16→32 and
/// 32→64) on AVX-512, with output pixels in the vector lanes: on the input's four phases (NchwConv's phased copy,
/// where every tap of a stride-2 row is a contiguous row again) 16 outputs take their nine taps per input channel with
/// nine loads, and 16 output channels accumulate them in registers, the weights broadcast from memory. The outputs
/// run over the phase rows' width, several short rows to a vector (a 7-wide row alone would fill 7 of 16 lanes).
/// As a matrix product with the output channels as rows, a 14x14 image is 210 columns (four 64-wide panels, the last
/// nearly empty) and 32 channels five and a third 6-row tiles, per image: it ran at 70–110 GFLOP/s.
/// </summary>
internal static unsafe class Stride2Conv3x3
{
    /// <summary>Whether this kernel takes the convolution (on by default; off only to test and measure it).</summary>
    internal static bool Enabled = true;

    private const int Group = 16;   // output channels per pass: 16 accumulators and the nine taps in registers

    /// <summary>
    /// 3x3, stride 2, on AVX-512, with at most 64 channels each side: past that the matrix product's tiles fill and it
    /// reuses each loaded value more.
    /// </summary>
    public static bool Supports(in ConvGeometry g) =>
        Enabled && Avx512F.IsSupported && g.KernelH == 3 && g.KernelW == 3 && g.Stride == 2 && g.InChannels <= 64 && g.OutChannels <= 64;

    /// <summary>
    /// y[n, o] = Σ_c Σ_t w[o, c, t]·x[n, c, 2·oy − pad + kh, 2·ox − pad + kw] (+ bias[o] after), added channel by
    /// channel and tap by tap from zero: the matrix product's order over its reduction (c, kh, kw), so the same bits.
    /// </summary>
    public static void Forward(in ConvGeometry g, int batch, float* x, float* w, float* bias, float* y)
    {
        var geometry = g;
        int ic = g.InChannels, oc = g.OutChannels, groups = (oc + Group - 1) / Group;
        // Weights as [group][c][tap][16]: a pass's 16 channels of one tap are one cache line (zero past OC). Repacked
        // every call (training changes them), into the calling thread's scratch.
        int length = groups * ic * 9 * Group;
        float* pw = NchwConv.Scratch(ref _packedWeights, length).Pointer;
        new Span<float>(pw, length).Clear();
        for (int o = 0; o < oc; o++)
            for (int c = 0; c < ic; c++)
                for (int t = 0; t < 9; t++)
                    pw[(((long)(o / Group) * ic + c) * 9 + t) * Group + o % Group] = w[((long)o * ic + c) * 9 + t];
        var chunks = ChunksFor(g);
        nint xs = (nint)x, ys = (nint)y, bs = (nint)bias, ws = (nint)pw;
        WorkerPool.For(batch, n =>
        {
            float* phases = NchwConv.PadImagesPhased(geometry, (float*)xs + (long)n * geometry.InImage, 1);
            Image(geometry, phases, (float*)ws, (float*)bs, (float*)ys + (long)n * geometry.OutImage, chunks);
        });
    }

    [ThreadStatic] private static AlignedBuffer? _packedWeights;
    private static readonly Dictionary<(int, int, int, int), Chunk[]> ChunkTables = [];

    // The chunks of a geometry, made once (they depend on its height, width, padding and output width only).
    private static Chunk[] ChunksFor(in ConvGeometry g)
    {
        var key = (g.Height, g.Width, g.Padding, g.OutWidth);
        lock (ChunkTables)
        {
            if (!ChunkTables.TryGetValue(key, out var chunks)) ChunkTables[key] = chunks = Chunks(g);
            return chunks;
        }
    }

    private static void Image(in ConvGeometry g, float* phases, float* w, float* bias, float* y, Chunk[] chunks)
    {
        int ic = g.InChannels, oc = g.OutChannels, outPlane = g.OutHeight * g.OutWidth;
        int hq = (g.Height + 2 * g.Padding + 1) / 2, wq = (g.Width + 2 * g.Padding + 1) / 2, plane = hq * wq;
        // Tap (kh, kw) of output (oy, ox) is phase (kh mod 2, kw mod 2) at row oy + kh/2, column ox + kw/2, so at
        // q + offset for q = oy·Wq + ox: outputs run over the phase rows' width (a junk column or so per row).
        long p00 = 0, p01 = plane, p10 = 2L * plane, p11 = 3L * plane;
        for (int g0 = 0; g0 < oc; g0 += Group)
        {
            float* wg = w + (long)(g0 / Group) * ic * 9 * Group;
            int count = Math.Min(Group, oc - g0);
            foreach (var chunk in chunks)
            {
                var z = Vector512<float>.Zero;
                Vector512<float> a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z;
                Vector512<float> a8 = z, a9 = z, a10 = z, a11 = z, a12 = z, a13 = z, a14 = z, a15 = z;
                float* wc = wg;
                for (int c = 0; c < ic; c++, wc += 9 * Group)
                {
                    // Junk lanes read the next row or the slack after the last: computed, not stored.
                    float* at = phases + (long)c * 4 * plane + chunk.Q;
                    var t0 = Vector512.Load(at + p00); var t1 = Vector512.Load(at + p01); var t2 = Vector512.Load(at + p00 + 1);
                    var t3 = Vector512.Load(at + p10); var t4 = Vector512.Load(at + p11); var t5 = Vector512.Load(at + p10 + 1);
                    var t6 = Vector512.Load(at + p00 + wq); var t7 = Vector512.Load(at + p01 + wq); var t8 = Vector512.Load(at + p00 + wq + 1);
                    a0 = NineTaps.Sum(wc + 0, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a0);
                    a1 = NineTaps.Sum(wc + 1, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a1);
                    a2 = NineTaps.Sum(wc + 2, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a2);
                    a3 = NineTaps.Sum(wc + 3, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a3);
                    a4 = NineTaps.Sum(wc + 4, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a4);
                    a5 = NineTaps.Sum(wc + 5, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a5);
                    a6 = NineTaps.Sum(wc + 6, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a6);
                    a7 = NineTaps.Sum(wc + 7, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a7);
                    a8 = NineTaps.Sum(wc + 8, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a8);
                    a9 = NineTaps.Sum(wc + 9, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a9);
                    a10 = NineTaps.Sum(wc + 10, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a10);
                    a11 = NineTaps.Sum(wc + 11, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a11);
                    a12 = NineTaps.Sum(wc + 12, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a12);
                    a13 = NineTaps.Sum(wc + 13, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a13);
                    a14 = NineTaps.Sum(wc + 14, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a14);
                    a15 = NineTaps.Sum(wc + 15, Group, t0, t1, t2, t3, t4, t5, t6, t7, t8, a15);
                }
                // The chunk's valid lanes are consecutive outputs from chunk.Output on: stored compressed.
                float* dst = y + (long)g0 * outPlane + chunk.Output;
                float* b = bias == null ? null : bias + g0;
                var mask = chunk.Valid;
                Store(dst, 0, count, outPlane, b, mask, a0); Store(dst, 1, count, outPlane, b, mask, a1);
                Store(dst, 2, count, outPlane, b, mask, a2); Store(dst, 3, count, outPlane, b, mask, a3);
                Store(dst, 4, count, outPlane, b, mask, a4); Store(dst, 5, count, outPlane, b, mask, a5);
                Store(dst, 6, count, outPlane, b, mask, a6); Store(dst, 7, count, outPlane, b, mask, a7);
                Store(dst, 8, count, outPlane, b, mask, a8); Store(dst, 9, count, outPlane, b, mask, a9);
                Store(dst, 10, count, outPlane, b, mask, a10); Store(dst, 11, count, outPlane, b, mask, a11);
                Store(dst, 12, count, outPlane, b, mask, a12); Store(dst, 13, count, outPlane, b, mask, a13);
                Store(dst, 14, count, outPlane, b, mask, a14); Store(dst, 15, count, outPlane, b, mask, a15);
            }
        }
    }

    /// <summary>16 wide positions q = oy·Wq + ox from Q on: which lanes are outputs (ox &lt; OW, oy &lt; OH), and the first one's output index.</summary>
    private readonly record struct Chunk(int Q, int Output, Vector512<float> Valid);

    private static Chunk[] Chunks(in ConvGeometry g)
    {
        int wq = (g.Width + 2 * g.Padding + 1) / 2, wide = g.OutHeight * wq;
        var chunks = new List<Chunk>();
        for (int q0 = 0; q0 < wide; q0 += 16)
        {
            var (output, valid) = WideRows.Block(q0, wide, wq, g.OutWidth);
            if (output >= 0) chunks.Add(new Chunk(q0, output, valid));
        }
        return [.. chunks];
    }

    // Output channel j of the pass (if below count): the chunk's valid lanes plus its bias, packed together.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* dst, int j, int count, int outPlane, float* bias, Vector512<float> valid, Vector512<float> v)
    {
        if (j >= count) return;
        if (bias != null) v += Vector512.Create(bias[j]);
        Avx512F.CompressStore(dst + (long)j * outPlane, valid, v);
    }
}
