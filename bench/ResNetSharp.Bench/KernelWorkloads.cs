using System.Globalization;
using System.Runtime.InteropServices;
using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;

namespace ResNetSharp.Bench;

/// <summary>
/// Single-kernel workloads for --ab (--ab-work KIND:SHAPE), for effects too small to see through a whole model on this
/// machine: a kernel call of a few milliseconds repeated over hundreds of rounds resolves 2–5%, where a model's step
/// swings by more than that from round to round. Operands are seeded and allocated once; each run is one call.
/// </summary>
internal static unsafe class KernelWorkloads
{
    public const string Help = "gemm:M,K,N[,res] (PackedGemm.Run: M rows, K-long reductions, N columns, 1x1; res adds a residual; ReLU on), " +
        "winograd-weights:C,T (NchwWinograd.TransformWeights of CxC 3x3 weights, tile T = 2 or 4), " +
        "nchw-conv:C,H,B (NchwConv.Forward then Backward: 3x3 stride 1, C to C channels, HxH images, batch B), " +
        "winograd:C,H,B,T (Winograd.Forward, the inference plan's NHWC Winograd with ReLU: C to C channels, HxH, batch B, tile T = 2 or 4)";

    public static bool IsKernel(string work) => work.Contains(':');

    /// <summary>
    /// A "kind:shape" workload checked without allocating anything: the kernel, its dimensions and whether a gemm adds
    /// a residual. Throws a <see cref="UsageException"/> that says what is wrong.
    /// </summary>
    public static (string Kind, int[] Dims, bool Residual) Parse(string work)
    {
        int colon = work.IndexOf(':');
        string kind = work[..colon];
        var parts = work[(colon + 1)..].Split(',');
        bool residual = kind == "gemm" && parts.Length == 4 && parts[3] == "res";
        var dims = (residual ? parts[..3] : parts).Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : -1).ToArray();
        int expected = kind switch { "gemm" => 3, "winograd-weights" => 2, "nchw-conv" => 3, "winograd" => 4, _ => 0 };
        if (expected == 0) throw new UsageException($"--ab-work: unknown kernel '{kind}'; kernels are {Help}");
        if (dims.Length != expected || dims.Any(d => d < 0))
            throw new UsageException($"--ab-work {kind} takes {expected} positive integers{(kind == "gemm" ? " (and optionally res)" : "")}, got '{work}'");
        // Each operand under 1 GB, so a typo is an error and not an out-of-memory.
        long[] operands = kind switch
        {
            "gemm" => [(long)dims[0] * dims[1], (long)dims[0] * dims[2], (long)dims[1] * dims[2]],
            "winograd-weights" => [(long)dims[0] * dims[0] * 36],
            "winograd" => [(long)dims[2] * dims[0] * (dims[1] + 4) * (dims[1] + 4) * 36 / 16, (long)dims[0] * dims[0] * 36],
            _ => [(long)dims[2] * dims[0] * dims[1] * dims[1], (long)dims[0] * dims[0] * 9],
        };
        if (operands.Any(f => f > (1L << 28))) throw new UsageException($"--ab-work {work}: an operand would take more than 1 GB");
        if (kind == "winograd-weights" && dims[1] is not (2 or 4)) throw new UsageException($"--ab-work winograd-weights: the tile is 2 or 4, got {dims[1]}");
        if (kind == "winograd" && dims[3] is not (2 or 4)) throw new UsageException($"--ab-work winograd: the tile is 2 or 4, got {dims[3]}");
        if (kind == "winograd" && dims[0] % 16 != 0) throw new UsageException($"--ab-work winograd: channels in multiples of 16, got {dims[0]}");
        return (kind, dims, residual);
    }

    /// <summary>The description and the run of a "kind:shape" workload (see <see cref="Parse"/>).</summary>
    public static (string Describe, Action Step) Create(string work)
    {
        var (kind, dims, residual) = Parse(work);
        switch (kind)
        {
            case "gemm":
                {
                    int m = dims[0], k = dims[1], n = dims[2];
                    var w = PackedWeights.FromOihw(Inputs.Normal(k * n, 11), n, k, 1, default, default);
                    float* x = Filled(m * k, 12), c = Filled(m * n, 13), r = residual ? Filled(m * n, 14) : null;
                    var offsets = Enumerable.Range(0, m).Select(i => i * k).ToArray();
                    return ($"PackedGemm.Run, {m} rows x {k} x {n} columns{(residual ? " + residual" : "")}, ReLU",
                        () => PackedGemm.Run(w, x, offsets, m, c, n, r, n, relu: true));
                }
            case "winograd-weights":
                {
                    int ch = dims[0], tile = dims[1];
                    float* w = Filled(ch * ch * 9, 15);
                    // Room for the largest layout a switch could ask for: a few lines per point beyond OC·IC.
                    float* u = Filled(checked((int)(NchwWinograd.PointsFor(tile) * ((long)ch * ch + 64))), 16);
                    return ($"NchwWinograd.TransformWeights, {ch}x{ch} channels, F({tile}x{tile},3x3)",
                        () => NchwWinograd.TransformWeights(w, ch, ch, u, tile));
                }
            case "winograd":
                {
                    int ch = dims[0], h = dims[1], batch = dims[2], tile = dims[3];
                    var g = new ConvGeometry(ch, h, h, ch, 3, 3, 1, 1);
                    int tiles = Winograd.TileCount(g, batch, tile), points = Winograd.Points(tile);
                    var u = Winograd.TransformWeights(Inputs.Normal(ch * ch * 9, 24), ch, ch, default, tile);
                    float* x = Filled(batch * g.InImage, 25), y = Filled(batch * g.OutImage, 26), bias = Filled(ch, 27);
                    float* v = Filled(points * tiles * ch, 28), m = Filled(points * tiles * ch, 29);
                    var rowOffsets = Enumerable.Range(0, tiles).Select(t => t * ch).ToArray();
                    bool chunked = Winograd.TakesChunks(g, batch, tile);
                    return ($"Winograd.Forward (NHWC, inference), {ch} channels, {h}x{h}, batch {batch}, F({tile}x{tile},3x3){(chunked ? ", in chunks" : "")}, ReLU",
                        () => Winograd.Forward(g, batch, u, bias, rowOffsets, x, y, null, relu: true, chunked ? null : v, chunked ? null : m));
                }
            default:
                {
                    int ch = dims[0], h = dims[1], batch = dims[2];
                    var g = new ConvGeometry(ch, h, h, ch, 3, 3, 1, 1);
                    float* x = Filled(batch * g.InImage, 17), dy = Filled(batch * g.OutImage, 18), y = Filled(batch * g.OutImage, 19);
                    float* dx = Filled(batch * g.InImage, 20), w = Filled(ch * ch * 9, 21), dw = Filled(ch * ch * 9, 22), bias = Filled(ch, 23);
                    return ($"NchwConv forward and backward, 3x3 stride 1, {ch} channels, {h}x{h}, batch {batch}",
                        () => { NchwConv.Forward(g, batch, x, w, bias, y); NchwConv.Backward(g, batch, x, w, dy, dx, dw, null); });
                }
        }
    }

    // Seeded normal values in 64-byte-aligned native memory, kept for the life of the process.
    private static float* Filled(int count, int seed)
    {
        float* p = (float*)NativeMemory.AlignedAlloc((nuint)count * sizeof(float), 64);
        Inputs.Normal(count, seed).CopyTo(new Span<float>(p, count));
        return p;
    }
}
