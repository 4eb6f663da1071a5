using System.Numerics;

namespace ResNetSharp.Kernels;

/// <summary>
/// Batch normalisation over (N,H,W) for each channel of an NCHW tensor:
/// y = γ·x̂ + β with x̂ = (x − μ)·σ⁻¹, σ⁻¹ = 1/√(var + eps). Sums are taken in double so that large batches of
/// float activations do not lose the mean.
/// </summary>
public static class BatchNormKernel
{
    /// <summary>Batch mean and biased variance per channel (two passes: the mean first, then squared deviations).</summary>
    public static void Statistics<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, Span<double> mean, Span<double> variance)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double count = (double)batch * plane;
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int n = 0; n < batch; n++)
                foreach (var v in x.Slice((n * channels + c) * plane, plane)) sum += double.CreateTruncating(v);
            double mu = sum / count;
            double sq = 0;
            for (int n = 0; n < batch; n++)
                foreach (var v in x.Slice((n * channels + c) * plane, plane))
                {
                    double d = double.CreateTruncating(v) - mu;
                    sq += d * d;
                }
            mean[c] = mu;
            variance[c] = sq / count;
        }
    }

    /// <summary>y = x·scale[c] + shift[c]: the normalisation with γ, β, μ and σ⁻¹ folded into one scale and shift.</summary>
    public static void ScaleShift<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, ReadOnlySpan<T> scale, ReadOnlySpan<T> shift, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < channels; c++)
            {
                int o = (n * channels + c) * plane;
                T a = scale[c], b = shift[c];
                var src = x.Slice(o, plane);
                var dst = y.Slice(o, plane);
                for (int i = 0; i < plane; i++) dst[i] = src[i] * a + b;
            }
    }

    /// <summary>
    /// dγ += Σ dy·x̂ and dβ += Σ dy per channel, with x̂ recovered from x, μ and σ⁻¹. When <paramref name="training"/>,
    /// dx = γσ⁻¹/m · (m·dy − Σdy − x̂·Σ(dy·x̂)) (the batch statistics depend on x); otherwise dx = γσ⁻¹·dy.
    /// </summary>
    public static void Backward<T>(int batch, int channels, int plane, ReadOnlySpan<T> x, ReadOnlySpan<T> dy,
        ReadOnlySpan<double> mean, ReadOnlySpan<double> invStd, ReadOnlySpan<T> gamma, bool training,
        Span<T> dx, Span<T> dgamma, Span<T> dbeta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double m = (double)batch * plane;
        for (int c = 0; c < channels; c++)
        {
            double sumDy = 0, sumDyXhat = 0, mu = mean[c], inv = invStd[c];
            for (int n = 0; n < batch; n++)
            {
                int o = (n * channels + c) * plane;
                var xs = x.Slice(o, plane);
                var ds = dy.Slice(o, plane);
                for (int i = 0; i < plane; i++)
                {
                    double d = double.CreateTruncating(ds[i]);
                    sumDy += d;
                    sumDyXhat += d * (double.CreateTruncating(xs[i]) - mu) * inv;
                }
            }
            dgamma[c] += T.CreateTruncating(sumDyXhat);
            dbeta[c] += T.CreateTruncating(sumDy);
            if (dx.IsEmpty) continue;
            double g = double.CreateTruncating(gamma[c]) * inv;
            for (int n = 0; n < batch; n++)
            {
                int o = (n * channels + c) * plane;
                var xs = x.Slice(o, plane);
                var ds = dy.Slice(o, plane);
                var dxs = dx.Slice(o, plane);
                if (training)
                {
                    // dx = g·(dy − mean(dy) − x̂·mean(dy·x̂)), written as a·dy + b·x + c0 per element.
                    double a = g, b = -g * inv * sumDyXhat / m, c0 = -g * sumDy / m + g * inv * sumDyXhat / m * mu;
                    T ta = T.CreateTruncating(a), tb = T.CreateTruncating(b), tc = T.CreateTruncating(c0);
                    for (int i = 0; i < plane; i++) dxs[i] = ta * ds[i] + tb * xs[i] + tc;
                }
                else
                {
                    T ta = T.CreateTruncating(g);
                    for (int i = 0; i < plane; i++) dxs[i] = ta * ds[i];
                }
            }
        }
    }
}
