using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// The few vector operations the packed kernels need, as static members of a struct per width, so one generic
/// kernel body is compiled once per width with every call inlined to the intrinsic.
/// </summary>
internal unsafe interface IVectorOps<TV> where TV : unmanaged
{
    static abstract int Lanes { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    /// <summary>A non-temporal store (p aligned to the vector): the line is written without being read first.</summary>
    static abstract void StoreStreaming(float* p, TV v);
    static abstract TV Broadcast(float v);
    /// <summary>a·b + c, fused where the hardware has FMA.</summary>
    static abstract TV MultiplyAdd(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
    static abstract TV Multiply(TV a, TV b);
    static abstract TV Max(TV a, TV b);
}

internal readonly unsafe struct Ops512 : IVectorOps<Vector512<float>>
{
    public static int Lanes => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StoreStreaming(float* p, Vector512<float> v) => Avx512F.StoreAlignedNonTemporal(p, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float v) => Vector512.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
}

internal readonly unsafe struct Ops256 : IVectorOps<Vector256<float>>
{
    public static int Lanes => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StoreStreaming(float* p, Vector256<float> v) => Avx.StoreAlignedNonTemporal(p, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float v) => Vector256.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
}

internal readonly unsafe struct Ops128 : IVectorOps<Vector128<float>>
{
    public static int Lanes => 4;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StoreStreaming(float* p, Vector128<float> v) => Sse.StoreAlignedNonTemporal(p, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float v) => Vector128.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
}

/// <summary>Register transposes for packing (AVX-512 only: callers check <see cref="Vector512.IsHardwareAccelerated"/>).</summary>
internal static unsafe class Transposes
{
    /// <summary>
    /// out[j·stride + i] = rows[i][j] for i, j &lt; 16 (a null row is zeros), writing the first `count` output rows:
    /// the 16x16 transpose in three rounds of shuffles (32-bit, 64-bit, then 128-bit lanes twice), all in registers
    /// (with the rows in a stack array, their stores and reloads cost as much as the shuffles).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // straight to optimised code: tier 0 calls every helper
    public static void Transpose16(float** rows, float* output, int stride, int count)
    {
        Vector512<float> r0 = Row(rows, 0), r1 = Row(rows, 1), r2 = Row(rows, 2), r3 = Row(rows, 3);
        Vector512<float> r4 = Row(rows, 4), r5 = Row(rows, 5), r6 = Row(rows, 6), r7 = Row(rows, 7);
        Vector512<float> r8 = Row(rows, 8), r9 = Row(rows, 9), r10 = Row(rows, 10), r11 = Row(rows, 11);
        Vector512<float> r12 = Row(rows, 12), r13 = Row(rows, 13), r14 = Row(rows, 14), r15 = Row(rows, 15);
        // Rows b..b+3: after these two rounds, lane k of u{b + j} holds column 4k + j of those four rows.
        Quad(r0, r1, r2, r3, out var u0, out var u1, out var u2, out var u3);
        Quad(r4, r5, r6, r7, out var u4, out var u5, out var u6, out var u7);
        Quad(r8, r9, r10, r11, out var u8, out var u9, out var u10, out var u11);
        Quad(r12, r13, r14, r15, out var u12, out var u13, out var u14, out var u15);
        // Lane k of u{j}, u{4 + j}, u{8 + j}, u{12 + j}: column 4k + j, all 16 rows.
        Columns(output, stride, count, 0, u0, u4, u8, u12);
        Columns(output, stride, count, 1, u1, u5, u9, u13);
        Columns(output, stride, count, 2, u2, u6, u10, u14);
        Columns(output, stride, count, 3, u3, u7, u11, u15);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float** rows, int i) => rows[i] == null ? Vector512<float>.Zero : Vector512.Load(rows[i]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d,
        out Vector512<float> u0, out Vector512<float> u1, out Vector512<float> u2, out Vector512<float> u3)
    {
        var t0 = Avx512F.UnpackLow(a, b); var t1 = Avx512F.UnpackHigh(a, b);
        var t2 = Avx512F.UnpackLow(c, d); var t3 = Avx512F.UnpackHigh(c, d);
        u0 = Avx512F.UnpackLow(t0.AsDouble(), t2.AsDouble()).AsSingle();
        u1 = Avx512F.UnpackHigh(t0.AsDouble(), t2.AsDouble()).AsSingle();
        u2 = Avx512F.UnpackLow(t1.AsDouble(), t3.AsDouble()).AsSingle();
        u3 = Avx512F.UnpackHigh(t1.AsDouble(), t3.AsDouble()).AsSingle();
    }

    // Columns j, 4 + j, 8 + j and 12 + j from the four u's of one j.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns(float* output, int stride, int count, int j, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        var even01 = Avx512F.Shuffle4x128(a, b, 0x88);
        var odd01 = Avx512F.Shuffle4x128(a, b, 0xDD);
        var even23 = Avx512F.Shuffle4x128(c, d, 0x88);
        var odd23 = Avx512F.Shuffle4x128(c, d, 0xDD);
        StoreColumn(output, stride, count, j, Avx512F.Shuffle4x128(even01, even23, 0x88));
        StoreColumn(output, stride, count, 8 + j, Avx512F.Shuffle4x128(even01, even23, 0xDD));
        StoreColumn(output, stride, count, 4 + j, Avx512F.Shuffle4x128(odd01, odd23, 0x88));
        StoreColumn(output, stride, count, 12 + j, Avx512F.Shuffle4x128(odd01, odd23, 0xDD));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreColumn(float* output, int stride, int count, int column, Vector512<float> v)
    {
        if (column < count) v.Store(output + (long)column * stride);
    }
}

/// <summary>Even/odd column splits and merges on AVX-512: lane indices for two-source permutes, and row operations.</summary>
internal static unsafe class Deinterleave
{
    /// <summary>Lanes [a0, b0, a1, b1, …] of PermuteVar16x32x2(a, ·, b): the first eight pairs (PairsLow), then the last eight.</summary>
    public static readonly Vector512<int> PairsLow = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    public static readonly Vector512<int> PairsHigh = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>Lane i takes element 2i (Evens) or 2i + 1 (Odds) of the 32 in two concatenated vectors.</summary>
    public static readonly Vector512<int> Evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    public static readonly Vector512<int> Odds = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);

    /// <summary>
    /// even[j] = row[2j] for j &lt; ⌈width/2⌉ and odd[j] = row[2j + 1] for j &lt; ⌊width/2⌋ (odd may be null: evens
    /// only, the stride-2 subsample of a row), 16 at a time with masked reads and writes (nothing outside those ranges
    /// is read or written). AVX-512 only.
    /// </summary>
    public static void Row(float* row, int width, float* even, float* odd)
    {
        var lanes = Vector512<int>.Indices;
        var w = Vector512.Create(width);
        for (int j = 0; 2 * j < width; j += 16)
        {
            var column = lanes + Vector512.Create(2 * j);
            var low = Avx512F.MaskLoad(row + 2 * j, Vector512.LessThan(column, w).AsSingle(), Vector512<float>.Zero);
            var high = Avx512F.MaskLoad(row + 2 * j + 16, Vector512.LessThan(column + Vector512.Create(16), w).AsSingle(), Vector512<float>.Zero);
            // Output lane i of this block holds columns 2(j + i) and 2(j + i) + 1.
            var pairColumn = (lanes + Vector512.Create(j)) * 2;
            Avx512F.MaskStore(even + j, Vector512.LessThan(pairColumn, w).AsSingle(), Avx512F.PermuteVar16x32x2(low, Evens, high));
            if (odd != null)
                Avx512F.MaskStore(odd + j, Vector512.LessThan(pairColumn + Vector512<int>.One, w).AsSingle(), Avx512F.PermuteVar16x32x2(low, Odds, high));
        }
    }

    /// <summary>even[j] = row[2j] for j &lt; ⌈width/2⌉: <see cref="Row"/> without the odd columns.</summary>
    public static void EvenColumns(float* row, int width, float* even) => Row(row, width, even, null);

    /// <summary>row[2j] += values[j] for j &lt; ⌈width/2⌉ (the adjoint of <see cref="EvenColumns"/>, accumulated); odd columns untouched.</summary>
    public static void AddToEvenColumns(float* row, int width, float* values)
    {
        var lanes = Vector512<int>.Indices;
        var w = Vector512.Create(width);
        int count = (width + 1) / 2;
        for (int j = 0; j < count; j += 16)
        {
            var v = Avx512F.MaskLoad(values + j, Vector512.LessThan(lanes, Vector512.Create(count - j)).AsSingle(), Vector512<float>.Zero);
            // Only even columns are written: odd lanes of the masks are off.
            var column = lanes + Vector512.Create(2 * j);
            var lowMask = (Vector512.LessThan(column, w) & Vector512.Equals(lanes & Vector512<int>.One, Vector512<int>.Zero)).AsSingle();
            var highMask = (Vector512.LessThan(column + Vector512.Create(16), w) & Vector512.Equals(lanes & Vector512<int>.One, Vector512<int>.Zero)).AsSingle();
            var zero = Vector512<float>.Zero;
            Avx512F.MaskStore(row + 2 * j, lowMask, Avx512F.MaskLoad(row + 2 * j, lowMask, zero) + Avx512F.PermuteVar16x32x2(v, PairsLow, zero));
            Avx512F.MaskStore(row + 2 * j + 16, highMask, Avx512F.MaskLoad(row + 2 * j + 16, highMask, zero) + Avx512F.PermuteVar16x32x2(v, PairsHigh, zero));
        }
    }
}

/// <summary>The nine taps of a 3x3 kernel applied to vectors of outputs (the direct kernels' inner sum).</summary>
internal static unsafe class NineTaps
{
    /// <summary>
    /// acc + Σ_t w[t·stride]·tap_t, added in tap order (t = kh·3 + kw): the order of the matrix product's reduction over
    /// a channel's taps, so that direct kernels round as the product does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sum(float* w, int stride, Vector512<float> t0, Vector512<float> t1, Vector512<float> t2, Vector512<float> t3,
        Vector512<float> t4, Vector512<float> t5, Vector512<float> t6, Vector512<float> t7, Vector512<float> t8, Vector512<float> acc)
    {
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[0]), t0, acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[stride]), t1, acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[2 * stride]), t2, acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[3 * stride]), t3, acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[4 * stride]), t4, acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[5 * stride]), t5, acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[6 * stride]), t6, acc);
        acc = Vector512.FusedMultiplyAdd(Vector512.Create(w[7 * stride]), t7, acc);
        return Vector512.FusedMultiplyAdd(Vector512.Create(w[8 * stride]), t8, acc);
    }
}
