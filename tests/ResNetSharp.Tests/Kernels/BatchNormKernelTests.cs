using ResNetSharp.Kernels;

namespace ResNetSharp.Tests.Kernels;

public class BatchNormKernelTests
{
    /// <summary>
    /// One-pass statistics on data whose mean dwarfs its spread (1e4 ± 1): the shifted sums must keep the variance,
    /// which E[x²] − μ² in float would lose entirely. Compared with a two-pass computation in double.
    /// </summary>
    [Theory]
    [InlineData(8, 3, 49)]
    [InlineData(2, 5, 1)]
    [InlineData(16, 2, 196)]
    public void StatisticsSurviveALargeMean(int batch, int channels, int plane)
    {
        var rng = new Random(batch + plane);
        var x = new float[batch * channels * plane];
        for (int i = 0; i < x.Length; i++) x[i] = 10000f + (float)(rng.NextDouble() * 2 - 1);
        var mean = new double[channels]; var variance = new double[channels];
        BatchNormKernel.Statistics<float>(batch, channels, plane, x, mean, variance);
        for (int c = 0; c < channels; c++)
        {
            var values = Enumerable.Range(0, batch).SelectMany(n => Enumerable.Range(0, plane).Select(i => (double)x[(n * channels + c) * plane + i])).ToArray();
            double mu = values.Average(), v = values.Select(d => (d - mu) * (d - mu)).Average();
            Assert.Equal(mu, mean[c], 1e-6 * Math.Abs(mu));
            Assert.True(Math.Abs(v - variance[c]) <= 1e-3 * Math.Max(v, 1e-3), $"channel {c}: variance {variance[c]} vs {v}");
        }
    }
}
