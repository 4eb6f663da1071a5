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

    /// <summary>
    /// BN with the following ReLU fused (one forward pass, the ReLU's mask applied inside the BN backward) against the
    /// two run apart, in float on the vectorised kernels: plane sizes around the vector width, many planes per task.
    /// </summary>
    [Theory]
    [InlineData(3, 2, 1)]
    [InlineData(5, 3, 7)]
    [InlineData(4, 4, 17)]
    [InlineData(64, 16, 49)]
    [InlineData(2, 3, 1000)]
    public void FusedReluMatchesBatchNormThenRelu(int batch, int channels, int plane)
    {
        var rng = new Random(batch * 7 + plane);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int total = batch * channels * plane;
        var x = R(total); var dy = R(total);
        var scale = R(channels); var shift = R(channels); var gamma = R(channels);
        var mean = new double[channels]; var variance = new double[channels];
        BatchNormKernel.Statistics<float>(batch, channels, plane, x, mean, variance);
        var invStd = variance.Select(v => 1 / Math.Sqrt(v + 1e-5)).ToArray();

        var normalised = new float[total]; var apart = new float[total]; var fused = new float[total];
        BatchNormKernel.ScaleShift<float>(batch, channels, plane, x, scale, shift, normalised);
        Elementwise.Relu<float>(normalised, apart);
        BatchNormKernel.ScaleShift<float>(batch, channels, plane, x, scale, shift, fused, relu: true);
        Assert.Equal(apart, fused);
        Assert.Contains(fused, v => v == 0f);
        Assert.Contains(fused, v => v > 0f);

        var maskedDy = new float[total];
        Elementwise.ReluBackward<float>(apart, dy, maskedDy);
        var dxApart = new float[total]; var dgApart = new float[channels]; var dbApart = new float[channels];
        BatchNormKernel.Backward<float>(batch, channels, plane, x, maskedDy, mean, invStd, gamma, true, dxApart, dgApart, dbApart);
        var dxFused = new float[total]; var dgFused = new float[channels]; var dbFused = new float[channels];
        BatchNormKernel.Backward<float>(batch, channels, plane, x, dy, mean, invStd, gamma, true, dxFused, dgFused, dbFused, reluScale: scale, reluShift: shift);
        Assert.Equal(dxApart, dxFused);
        Assert.Equal(dgApart, dgFused);
        Assert.Equal(dbApart, dbFused);
    }
}

/// <summary>
/// The BN backward channel by channel (large tensors) against the two whole-tensor passes: the same bits for dx, dγ
/// and dβ, with and without the fused ReLU's mask, at batch sizes that split unevenly over the threads.
/// </summary>
[Collection(nameof(ResNetSharp.Tests.Models.ProcessWideSwitches))]
public class BatchNormByChannelTests
{
    [Theory]
    [InlineData(3, 2, 1, false)]
    [InlineData(5, 3, 7, true)]
    [InlineData(7, 4, 17, true)]
    [InlineData(64, 16, 49, false)]
    [InlineData(9, 3, 784, true)]
    public void ByChannelMatchesTheTwoPasses(int batch, int channels, int plane, bool masked)
    {
        var rng = new Random(batch * 13 + plane);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int total = batch * channels * plane;
        var x = R(total); var dy = R(total); var gamma = R(channels); var scale = R(channels); var shift = R(channels);
        var mean = new double[channels]; var variance = new double[channels];
        BatchNormKernel.Statistics<float>(batch, channels, plane, x, mean, variance);
        var invStd = variance.Select(v => 1 / Math.Sqrt(v + 1e-5)).ToArray();

        (float[] Dx, float[] Dg, float[] Db) Run(bool byChannel)
        {
            var dx = new float[total]; var dg = R(channels); var db = R(channels);
            long from = BatchNormKernel.ByChannelFromBytes; int minPlane = BatchNormKernel.ByChannelMinPlane;
            BatchNormKernel.ByChannelFromBytes = byChannel ? 0 : long.MaxValue;
            BatchNormKernel.ByChannelMinPlane = byChannel ? 1 : int.MaxValue;
            try
            {
                BatchNormKernel.Backward<float>(batch, channels, plane, x, dy, mean, invStd, gamma, true, dx, dg, db,
                    masked ? scale : default, masked ? shift : default);
            }
            finally { BatchNormKernel.ByChannelFromBytes = from; BatchNormKernel.ByChannelMinPlane = minPlane; }
            return (dx, dg, db);
        }
        rng = new Random(1);
        var twoPasses = Run(byChannel: false);
        rng = new Random(1);
        var byChannel = Run(byChannel: true);
        Assert.Equal(twoPasses.Dx, byChannel.Dx);
        Assert.Equal(twoPasses.Dg, byChannel.Dg);
        Assert.Equal(twoPasses.Db, byChannel.Db);
    }
}
