using System.Numerics;
using ResNetSharp.Kernels;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>y = max(x, 0), any shape. The gradient at 0 is 0, as in PyTorch.</summary>
public sealed class ReLU<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _output, _inputGrad;

    public override string Kind => "ReLU";
    public override int[] OutputShape(ReadOnlySpan<int> input) => input.ToArray();

    public override Tensor<T> Forward(Tensor<T> x)
    {
        var y = Tensor<T>.Reuse(ref _output, false, x.ShapeArray);
        Elementwise.Relu<T>(x.Span, y.Span);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var y = _output ?? throw new InvalidOperationException($"{Label}: Backward called before Forward");
        var dx = GradientBuffers<T>.Rent(ref _inputGrad, y.ShapeArray);
        Elementwise.ReluBackward<T>(y.Span, dy.Span, dx.Span);
        return dx;
    }
}

/// <summary>The residual connection: y = a + b; both inputs receive dy unchanged.</summary>
public sealed class ResidualAdd<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _output;

    public Tensor<T> Forward(Tensor<T> a, Tensor<T> b, string layer) => Forward(a, b, layer, relu: false);

    /// <summary>With <paramref name="relu"/>, y = max(a + b, 0) in one pass; <see cref="ReluBackward"/> is then its gradient.</summary>
    public Tensor<T> Forward(Tensor<T> a, Tensor<T> b, string layer, bool relu)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ShapeMismatchException(layer, $"the residual branch's shape {Tensor<T>.ShapeString(a.Shape)}", b.ShapeArray,
                "shortcut and residual branch disagree");
        var y = Tensor<T>.Reuse(ref _output, false, a.ShapeArray);
        if (relu) Elementwise.AddRelu<T>(a.Span, b.Span, y.Span);
        else Elementwise.Add<T>(a.Span, b.Span, y.Span);
        return y;
    }

    /// <summary>
    /// y = max(norm(a) + b, 0) with the residual branch's last BN applied in the same pass
    /// (<see cref="BatchNorm2d{T}.ForwardAddRelu"/>); <see cref="ReluBackward"/> is then the gradient of norm(a) and b.
    /// </summary>
    internal Tensor<T> ForwardNormAddRelu(BatchNorm2d<T> norm, Tensor<T> a, Tensor<T> b, string layer)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ShapeMismatchException(layer, $"the residual branch's shape {Tensor<T>.ShapeString(a.Shape)}", b.ShapeArray,
                "shortcut and residual branch disagree");
        var y = Tensor<T>.Reuse(ref _output, false, a.ShapeArray);
        norm.ForwardAddRelu(a, b, y);
        return y;
    }

    /// <summary>The gradient of max(a + b, 0) with respect to a and to b (the same tensor): dy where the output is positive.</summary>
    public Tensor<T> ReluBackward(Tensor<T> dy)
    {
        var y = _output ?? throw new InvalidOperationException("residual add: Backward called before Forward");
        var d = GradientBuffers<T>.Rent(ref _gradient, y.ShapeArray);
        Elementwise.ReluBackward<T>(y.Span, dy.Span, d.Span);
        return d;
    }

    private Tensor<T>? _gradient;

    /// <summary>d(a+b)/da = d(a+b)/db = 1, so both gradients are dy itself (no copy).</summary>
    public static (Tensor<T> Da, Tensor<T> Db) Backward(Tensor<T> dy) => (dy, dy);
}
