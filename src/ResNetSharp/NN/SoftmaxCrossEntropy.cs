using System.Numerics;
using ResNetSharp.Kernels;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>
/// Mean softmax cross-entropy of logits (N,K) against class indices, with optional label smoothing (PyTorch's
/// F.cross_entropy(label_smoothing=ε)). Forward returns the loss; Backward returns dloss/dlogits.
/// </summary>
public sealed class SoftmaxCrossEntropy<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _grad;

    public SoftmaxCrossEntropy(double labelSmoothing = 0)
    {
        if (labelSmoothing is < 0 or > 1 || double.IsNaN(labelSmoothing))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing must be in [0, 1]");
        LabelSmoothing = labelSmoothing;
    }

    public double LabelSmoothing { get; }

    /// <summary>Computes the loss and, at the same time, the gradient that <see cref="Backward"/> returns.</summary>
    public double Forward(Tensor<T> logits, ReadOnlySpan<int> targets)
    {
        if (logits.Rank != 2)
            throw new ShapeMismatchException("SoftmaxCrossEntropy", "(N, K)", logits.ShapeArray, $"expected rank-2 logits, got rank {logits.Rank}");
        int n = logits.Dim(0), k = logits.Dim(1);
        if (targets.Length != n)
            throw new ArgumentException($"SoftmaxCrossEntropy: {targets.Length} targets for a batch of {n}");
        for (int i = 0; i < n; i++)
            if ((uint)targets[i] >= (uint)k)
                throw new ArgumentOutOfRangeException(nameof(targets), $"SoftmaxCrossEntropy: target {targets[i]} at position {i} is outside [0, {k})");
        var grad = Tensor<T>.Reuse(ref _grad, false, n, k);
        return SoftmaxCrossEntropyKernel.ForwardBackward(n, k, logits.Span, targets, LabelSmoothing, grad.Span);
    }

    public Tensor<T> Backward() => _grad ?? throw new InvalidOperationException("SoftmaxCrossEntropy: Backward called before Forward");
}
