using System.Numerics;

namespace ResNetSharp.Kernels;

/// <summary>Elementwise ops: ReLU and its gradient, and the residual add.</summary>
public static class Elementwise
{
    /// <summary>y = max(x, 0).</summary>
    public static void Relu<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > T.Zero ? x[i] : T.Zero;
    }

    /// <summary>dx = dy where y &gt; 0, else 0. At x = 0 the gradient is 0, as in PyTorch's threshold_backward.</summary>
    public static void ReluBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
    }

    /// <summary>y = a + b.</summary>
    public static void Add<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < a.Length; i++) y[i] = a[i] + b[i];
    }

    /// <summary>y += x.</summary>
    public static void AddInPlace<T>(Span<T> y, ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] += x[i];
    }
}
