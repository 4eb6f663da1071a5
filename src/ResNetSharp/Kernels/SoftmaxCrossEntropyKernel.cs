using System.Numerics;

namespace ResNetSharp.Kernels;

/// <summary>
/// Mean softmax cross-entropy over a batch of logits (N,K), with optional label smoothing ε as in PyTorch:
/// the target distribution is (1−ε)·onehot + ε/K, so loss_n = −Σk q_k·log p_k.
/// The row maximum is subtracted before exp so that large logits cannot overflow.
/// </summary>
public static class SoftmaxCrossEntropyKernel
{
    /// <summary>Returns the mean loss and writes dlogits = (softmax − q)/N.</summary>
    public static double ForwardBackward<T>(int batch, int classes, ReadOnlySpan<T> logits, ReadOnlySpan<int> targets,
        double labelSmoothing, Span<T> dlogits) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double total = 0;
        double off = labelSmoothing / classes, on = 1 - labelSmoothing + off;
        for (int n = 0; n < batch; n++)
        {
            var row = logits.Slice(n * classes, classes);
            int target = targets[n];
            double max = double.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, double.CreateTruncating(v));
            double sumExp = 0;
            foreach (var v in row) sumExp += Math.Exp(double.CreateTruncating(v) - max);
            double logSumExp = max + Math.Log(sumExp);
            var drow = dlogits.Slice(n * classes, classes);
            for (int k = 0; k < classes; k++)
            {
                double logP = double.CreateTruncating(row[k]) - logSumExp;
                double q = k == target ? on : off;
                total -= q * logP;
                drow[k] = T.CreateTruncating((Math.Exp(logP) - q) / batch);
            }
        }
        return total / batch;
    }
}
