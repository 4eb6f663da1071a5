using System.Numerics;

namespace ResNetSharp.Kernels.Reference;

/// <summary>Naive triple loops: the algorithmic reference every fast matrix product is tested against.</summary>
public static class GemmReference
{
    /// <summary>C[i,j] = Σk A[i,k]·B[k,j] (+ C[i,j]).</summary>
    public static void NN<T>(int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : INumber<T>
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T sum = T.Zero;
                for (int kk = 0; kk < k; kk++) sum += a[i * lda + kk] * b[kk * ldb + j];
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
            }
    }

    /// <summary>C[i,j] = Σk A[i,k]·B[j,k] (+ C[i,j]).</summary>
    public static void NT<T>(int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : INumber<T>
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T sum = T.Zero;
                for (int kk = 0; kk < k; kk++) sum += a[i * lda + kk] * b[j * ldb + kk];
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
            }
    }

    /// <summary>C[i,j] = Σk A[k,i]·B[k,j] (+ C[i,j]).</summary>
    public static void TN<T>(int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : INumber<T>
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T sum = T.Zero;
                for (int kk = 0; kk < k; kk++) sum += a[kk * lda + i] * b[kk * ldb + j];
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
            }
    }
}
