using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Reference;

namespace ResNetSharp.Tests.Kernels;

/// <summary>The tiled matrix products against the naive triple loops, at sizes around the 4-row, 2-vector tile.</summary>
public class GemmTests
{
    // 1, odd, tile−1, tile, tile+1 for the 4-row tile and the 16/32-column tiles (Vector256/Vector512 floats), and large.
    public static TheoryData<int, int, int> Sizes()
    {
        var data = new TheoryData<int, int, int>();
        int[] ms = [1, 3, 4, 5, 7, 8, 9, 64];
        int[] ns = [1, 7, 15, 16, 17, 31, 32, 33, 49, 197];
        int[] ks = [1, 3, 27, 64, 147];
        foreach (int m in ms) foreach (int n in ns) data.Add(m, n, ks[(m + n) % ks.Length]);
        data.Add(0, 5, 3); data.Add(5, 0, 3); data.Add(5, 5, 0);
        data.Add(67, 301, 577);
        return data;
    }

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static void AssertClose(float[] expected, float[] actual, int k)
    {
        // Float sums of k products in a different order: the error grows like √k·ε times the magnitudes.
        double tol = 1e-6 * Math.Max(1, k);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"entry {i}: expected {expected[i]}, got {actual[i]} (k={k})");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void NNMatchesReference(int m, int n, int k)
    {
        foreach (bool accumulate in new[] { false, true })
        {
            int lda = k + 2, ldb = n + 3, ldc = n + 1;  // strides wider than the rows, to catch stride bugs
            var a = Random(Math.Max(1, m * lda), 1); var b = Random(Math.Max(1, k * ldb), 2);
            var expected = Random(Math.Max(1, m * ldc), 3); var actual = (float[])expected.Clone();
            GemmReference.NN<float>(m, n, k, a, lda, b, ldb, expected, ldc, accumulate);
            Gemm.NN<float>(m, n, k, a, lda, b, ldb, actual, ldc, accumulate);
            AssertClose(expected, actual, k);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void NTMatchesReference(int m, int n, int k)
    {
        var a = Random(Math.Max(1, m * k), 4); var b = Random(Math.Max(1, n * k), 5);
        var expected = Random(Math.Max(1, m * n), 6); var actual = (float[])expected.Clone();
        GemmReference.NT<float>(m, n, k, a, k, b, k, expected, n, accumulate: true);
        Gemm.NT<float>(m, n, k, a, k, b, k, actual, n, accumulate: true);
        AssertClose(expected, actual, k);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void TNMatchesReference(int m, int n, int k)
    {
        var a = Random(Math.Max(1, k * m), 7); var b = Random(Math.Max(1, k * n), 8);
        var expected = Random(Math.Max(1, m * n), 9); var actual = (float[])expected.Clone();
        GemmReference.TN<float>(m, n, k, a, m, b, n, expected, n, accumulate: false);
        Gemm.TN<float>(m, n, k, a, m, b, n, actual, n, accumulate: false, new float[Math.Max(1, m * k)]);
        AssertClose(expected, actual, k);
    }

    [Fact]
    public void DoublePathMatchesReference()
    {
        var rng = new Random(3);
        int m = 9, n = 23, k = 17;
        var a = Enumerable.Range(0, m * k).Select(_ => rng.NextDouble()).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => rng.NextDouble()).ToArray();
        var expected = new double[m * n]; var actual = new double[m * n];
        GemmReference.NN<double>(m, n, k, a, k, b, n, expected, n, false);
        Gemm.NN<double>(m, n, k, a, k, b, n, actual, n, false);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-12);
    }

    [Fact]
    public void UndersizedSpansAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => Gemm.NN<float>(4, 4, 4, new float[15], 4, new float[16], 4, new float[16], 4, false));
        Assert.Contains("A:", e.Message);
    }
}
