using System.Numerics;
using ResNetSharp.Kernels;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>Max pooling over square windows, padding counted as −∞ (the ResNet stem uses 3x3, stride 2, padding 1).</summary>
public sealed class MaxPool2d<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _output, _inputGrad;
    private int[] _argmax = [];
    private int[]? _inputShape;

    public MaxPool2d(int kernelSize = 3, int stride = 2, int padding = 1)
    {
        if (kernelSize <= 0 || stride <= 0 || padding < 0 || 2 * padding > kernelSize)
            throw new ArgumentException($"MaxPool2d: invalid configuration k={kernelSize} stride={stride} padding={padding} (padding must be at most half the kernel)");
        KernelSize = kernelSize; Stride = stride; Padding = padding;
    }

    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public override string Kind => "MaxPool2d";

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        var (n, c, h, w) = ExpectNchw(input);
        if (h + 2 * Padding < KernelSize || w + 2 * Padding < KernelSize)
            throw ShapeError($"(N, C, H, W) with H, W >= {KernelSize - 2 * Padding}", input, $"input {h}x{w} is smaller than the {KernelSize}x{KernelSize} window");
        return [n, c, (h + 2 * Padding - KernelSize) / Stride + 1, (w + 2 * Padding - KernelSize) / Stride + 1];
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        var shape = OutputShape(x.Shape);
        var y = Tensor<T>.Reuse(ref _output, false, shape);
        if (_argmax.Length < y.Length) _argmax = new int[y.Length];
        PoolKernels.MaxPoolForward<T>(x.N * x.C, x.H, x.W, KernelSize, Stride, Padding, x.Span, y.Span, _argmax);
        _inputShape = x.ShapeArray;
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var shape = _inputShape ?? throw new InvalidOperationException($"{Label}: Backward called before Forward");
        var dx = GradientBuffers<T>.Rent(ref _inputGrad, shape);
        PoolKernels.MaxPoolBackward<T>(shape[0] * shape[1], shape[2] * shape[3], dy.H * dy.W, dy.Span, _argmax, dx.Span);
        return dx;
    }
}

/// <summary>Global average pooling, torchvision's AdaptiveAvgPool2d((1, 1)): (N,C,H,W) → (N,C,1,1).</summary>
public sealed class AdaptiveAvgPool2d<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _output, _inputGrad;
    private int[]? _inputShape;

    public override string Kind => "AdaptiveAvgPool2d";

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        var (n, c, h, w) = ExpectNchw(input);
        if (h < 1 || w < 1) throw ShapeError("(N, C, H, W) with H, W >= 1", input, "empty spatial size");
        return [n, c, 1, 1];
    }

    public override long MacsPerImage(ReadOnlySpan<int> input) => 0;

    public override Tensor<T> Forward(Tensor<T> x)
    {
        var shape = OutputShape(x.Shape);
        var y = Tensor<T>.Reuse(ref _output, false, shape);
        PoolKernels.GlobalAverageForward<T>(x.N * x.C, x.H * x.W, x.Span, y.Span);
        _inputShape = x.ShapeArray;
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var shape = _inputShape ?? throw new InvalidOperationException($"{Label}: Backward called before Forward");
        var dx = GradientBuffers<T>.Rent(ref _inputGrad, shape);
        PoolKernels.GlobalAverageBackward<T>(shape[0] * shape[1], shape[2] * shape[3], dy.Span, dx.Span);
        return dx;
    }
}

/// <summary>(N, ...) → (N, rest): a view, no copy; backward reshapes the gradient back.</summary>
public sealed class Flatten<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private int[]? _inputShape;

    public override string Kind => "Flatten";

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        if (input.Length < 1) throw ShapeError("(N, ...)", input, "a scalar cannot be flattened");
        return [input[0], Tensor<T>.ElementCount(input[1..])];
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        _inputShape = x.ShapeArray;
        return x.Reshape(OutputShape(x.Shape));
    }

    public override Tensor<T> Backward(Tensor<T> dy) =>
        dy.Reshape(_inputShape ?? throw new InvalidOperationException($"{Label}: Backward called before Forward"));
}
