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
    /// the 16x16 transpose in three rounds of shuffles (32-bit, 64-bit, then 128-bit lanes twice).
    /// </summary>
    public static void Transpose16(float** rows, float* output, int stride, int count)
    {
        var r = stackalloc Vector512<float>[16];
        for (int i = 0; i < 16; i++) r[i] = rows[i] == null ? Vector512<float>.Zero : Vector512.Load(rows[i]);
        var u = stackalloc Vector512<float>[16];
        for (int b = 0; b < 16; b += 4)
        {
            // Rows b..b+3: after these two rounds, lane k of u[b + j] holds column 4k + j of those four rows.
            var t0 = Avx512F.UnpackLow(r[b], r[b + 1]);
            var t1 = Avx512F.UnpackHigh(r[b], r[b + 1]);
            var t2 = Avx512F.UnpackLow(r[b + 2], r[b + 3]);
            var t3 = Avx512F.UnpackHigh(r[b + 2], r[b + 3]);
            u[b] = Avx512F.UnpackLow(t0.AsDouble(), t2.AsDouble()).AsSingle();
            u[b + 1] = Avx512F.UnpackHigh(t0.AsDouble(), t2.AsDouble()).AsSingle();
            u[b + 2] = Avx512F.UnpackLow(t1.AsDouble(), t3.AsDouble()).AsSingle();
            u[b + 3] = Avx512F.UnpackHigh(t1.AsDouble(), t3.AsDouble()).AsSingle();
        }
        for (int j = 0; j < 4; j++)
        {
            // Gather lane k of u[j], u[4 + j], u[8 + j], u[12 + j]: column 4k + j, all 16 rows.
            var even01 = Avx512F.Shuffle4x128(u[j], u[4 + j], 0x88);
            var odd01 = Avx512F.Shuffle4x128(u[j], u[4 + j], 0xDD);
            var even23 = Avx512F.Shuffle4x128(u[8 + j], u[12 + j], 0x88);
            var odd23 = Avx512F.Shuffle4x128(u[8 + j], u[12 + j], 0xDD);
            StoreColumn(output, stride, count, j, Avx512F.Shuffle4x128(even01, even23, 0x88));
            StoreColumn(output, stride, count, 8 + j, Avx512F.Shuffle4x128(even01, even23, 0xDD));
            StoreColumn(output, stride, count, 4 + j, Avx512F.Shuffle4x128(odd01, odd23, 0x88));
            StoreColumn(output, stride, count, 12 + j, Avx512F.Shuffle4x128(odd01, odd23, 0xDD));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreColumn(float* output, int stride, int count, int column, Vector512<float> v)
    {
        if (column < count) v.Store(output + (long)column * stride);
    }
}

/// <summary>Even/odd column splits on AVX-512: lane indices for two-source permutes, and a row split.</summary>
internal static unsafe class Deinterleave
{
    /// <summary>Lane i takes element 2i (Evens) or 2i + 1 (Odds) of the 32 in two concatenated vectors.</summary>
    public static readonly Vector512<int> Evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    public static readonly Vector512<int> Odds = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);

    /// <summary>
    /// even[j] = row[2j] for j &lt; ⌈width/2⌉ and odd[j] = row[2j + 1] for j &lt; ⌊width/2⌋, 16 at a time with masked
    /// reads and writes (nothing outside those ranges is read or written). AVX-512 only.
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
            Avx512F.MaskStore(odd + j, Vector512.LessThan(pairColumn + Vector512<int>.One, w).AsSingle(), Avx512F.PermuteVar16x32x2(low, Odds, high));
        }
    }
}
