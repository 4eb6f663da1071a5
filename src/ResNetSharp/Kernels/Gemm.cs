using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResNetSharp.Kernels;

/// <summary>
/// Row-major matrix products on spans. C is (M,N) with row stride ldc; every method either overwrites C
/// (<c>accumulate: false</c>) or adds into it. Plain portable code on <see cref="Vector{T}"/>: a 4-row by
/// two-vector register tile, scalar edges. The reference it is tested against is <see cref="Reference.GemmReference"/>.
/// </summary>
public static class Gemm
{
    private const int TileRows = 4;

    /// <summary>C = A·B (+ C): A is (M,K) with stride lda, B is (K,N) with stride ldb.</summary>
    public static void NN<T>(int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb,
        Span<T> c, int ldc, bool accumulate) where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        CheckSizes(m, k, lda, a.Length, "A"); CheckSizes(k, n, ldb, b.Length, "B"); CheckSizes(m, n, ldc, c.Length, "C");
        if (!accumulate)
            for (int i = 0; i < m; i++) c.Slice(i * ldc, n).Clear();
        if (k == 0) return;

        int vc = Vector<T>.Count;
        int tileCols = 2 * vc;
        int fullCols = Vector.IsHardwareAccelerated ? n - n % tileCols : 0;
        int i0 = 0;
        for (; i0 + TileRows <= m; i0 += TileRows)
        {
            for (int j0 = 0; j0 < fullCols; j0 += tileCols)
                Kernel4x2V(k, a.Slice(i0 * lda), lda, b.Slice(j0), ldb, c.Slice(i0 * ldc + j0), ldc);
            EdgeColumns(TileRows, n, k, fullCols, a.Slice(i0 * lda), lda, b, ldb, c.Slice(i0 * ldc), ldc);
        }
        if (i0 < m)
            EdgeColumns(m - i0, n, k, 0, a.Slice(i0 * lda), lda, b, ldb, c.Slice(i0 * ldc), ldc);
    }

    /// <summary>C = A·Bᵀ (+ C): A is (M,K) with stride lda, B is (N,K) with stride ldb. Each entry is a dot product of two rows.</summary>
    public static void NT<T>(int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb,
        Span<T> c, int ldc, bool accumulate) where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        CheckSizes(m, k, lda, a.Length, "A"); CheckSizes(n, k, ldb, b.Length, "B"); CheckSizes(m, n, ldc, c.Length, "C");
        for (int i = 0; i < m; i++)
        {
            var aRow = a.Slice(i * lda, k);
            var cRow = c.Slice(i * ldc, n);
            for (int j = 0; j < n; j++)
            {
                T dot = Dot(aRow, b.Slice(j * ldb, k));
                cRow[j] = accumulate ? cRow[j] + dot : dot;
            }
        }
    }

    /// <summary>C = Aᵀ·B (+ C): A is (K,M) with stride lda, B is (K,N) with stride ldb. A is transposed into
    /// <paramref name="scratch"/> (at least M·K) so the product runs on the NN tile.</summary>
    public static void TN<T>(int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb,
        Span<T> c, int ldc, bool accumulate, Span<T> scratch) where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        CheckSizes(k, m, lda, a.Length, "A");
        if (scratch.Length < m * k) throw new ArgumentException($"scratch has {scratch.Length} elements, needs {m * k}");
        for (int kk = 0; kk < k; kk++)
            for (int i = 0; i < m; i++)
                scratch[i * k + kk] = a[kk * lda + i];
        NN(m, n, k, scratch, k, b, ldb, c, ldc, accumulate);
    }

    /// <summary>Σ x[i]·y[i] over two equal-length spans.</summary>
    public static T Dot<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y) where T : unmanaged, INumber<T>
    {
        int i = 0;
        T sum = T.Zero;
        if (Vector.IsHardwareAccelerated && x.Length >= 2 * Vector<T>.Count)
        {
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            var yv = MemoryMarshal.Cast<T, Vector<T>>(y);
            Vector<T> acc0 = Vector<T>.Zero, acc1 = Vector<T>.Zero;
            int v = 0;
            for (; v + 1 < xv.Length; v += 2)
            {
                acc0 += xv[v] * yv[v];
                acc1 += xv[v + 1] * yv[v + 1];
            }
            for (; v < xv.Length; v++) acc0 += xv[v] * yv[v];
            sum = Vector.Sum(acc0 + acc1);
            i = xv.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++) sum += x[i] * y[i];
        return sum;
    }

    // Register tile: rows r0..r3 of C, two vectors of columns (lanes j0..j0+2·VC-1). Accumulates over all of K,
    // broadcasting A[r,kk] and loading the two B vectors once per kk.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel4x2V<T>(int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc)
        where T : unmanaged, INumber<T>
    {
        int vc = Vector<T>.Count;
        ref T cRef = ref MemoryMarshal.GetReference(c);
        ref T bRef = ref MemoryMarshal.GetReference(b);
        ref T aRef = ref MemoryMarshal.GetReference(a);
        var c00 = LoadV(ref cRef, 0); var c01 = LoadV(ref cRef, vc);
        var c10 = LoadV(ref cRef, ldc); var c11 = LoadV(ref cRef, ldc + vc);
        var c20 = LoadV(ref cRef, 2 * ldc); var c21 = LoadV(ref cRef, 2 * ldc + vc);
        var c30 = LoadV(ref cRef, 3 * ldc); var c31 = LoadV(ref cRef, 3 * ldc + vc);
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = LoadV(ref bRef, kk * ldb);
            var b1 = LoadV(ref bRef, kk * ldb + vc);
            var a0 = new Vector<T>(Unsafe.Add(ref aRef, kk));
            var a1 = new Vector<T>(Unsafe.Add(ref aRef, lda + kk));
            var a2 = new Vector<T>(Unsafe.Add(ref aRef, 2 * lda + kk));
            var a3 = new Vector<T>(Unsafe.Add(ref aRef, 3 * lda + kk));
            c00 += a0 * b0; c01 += a0 * b1;
            c10 += a1 * b0; c11 += a1 * b1;
            c20 += a2 * b0; c21 += a2 * b1;
            c30 += a3 * b0; c31 += a3 * b1;
        }
        StoreV(c00, ref cRef, 0); StoreV(c01, ref cRef, vc);
        StoreV(c10, ref cRef, ldc); StoreV(c11, ref cRef, ldc + vc);
        StoreV(c20, ref cRef, 2 * ldc); StoreV(c21, ref cRef, 2 * ldc + vc);
        StoreV(c30, ref cRef, 3 * ldc); StoreV(c31, ref cRef, 3 * ldc + vc);
    }

    // Columns j0..n-1 of `rows` rows, one column at a time: C[r,j] += Σk A[r,kk]·B[kk,j].
    private static void EdgeColumns<T>(int rows, int n, int k, int j0, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb,
        Span<T> c, int ldc) where T : unmanaged, INumber<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var aRow = a.Slice(r * lda, k);
            for (int j = j0; j < n; j++)
            {
                T sum = T.Zero;
                for (int kk = 0; kk < k; kk++) sum += aRow[kk] * b[kk * ldb + j];
                c[r * ldc + j] += sum;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> LoadV<T>(ref T start, int offset) where T : unmanaged =>
        Unsafe.ReadUnaligned<Vector<T>>(ref Unsafe.As<T, byte>(ref Unsafe.Add(ref start, offset)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreV<T>(Vector<T> v, ref T start, int offset) where T : unmanaged =>
        Unsafe.WriteUnaligned(ref Unsafe.As<T, byte>(ref Unsafe.Add(ref start, offset)), v);

    private static void CheckSizes(int rows, int cols, int stride, int length, string name)
    {
        if (rows == 0 || cols == 0) return;
        if (stride < cols) throw new ArgumentException($"{name}: row stride {stride} is less than its {cols} columns");
        if ((long)(rows - 1) * stride + cols > length)
            throw new ArgumentException($"{name}: ({rows},{cols}) with stride {stride} needs {(long)(rows - 1) * stride + cols} elements, span has {length}");
    }
}
