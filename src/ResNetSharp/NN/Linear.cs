using System.Numerics;
using ResNetSharp.Kernels;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>Fully connected layer: x (N,IN), weight (OUT,IN), bias (OUT) → y = x·Wᵀ + b (N,OUT).</summary>
public sealed class Linear<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _input, _output, _inputGrad, _scratch;

    public Linear(int inFeatures, int outFeatures, bool bias = true, Random? rng = null)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"Linear: invalid size {inFeatures} -> {outFeatures}");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        rng ??= new Random(0);
        double bound = 1.0 / Math.Sqrt(inFeatures);  // PyTorch's default: kaiming_uniform(a=√5) gives 1/√fan_in
        Weight = new Parameter<T>("weight", new Tensor<T>(outFeatures, inFeatures), ParameterRole.Weight);
        Init.Uniform(Weight.Value, bound, rng);
        if (bias)
        {
            Bias = new Parameter<T>("bias", new Tensor<T>(outFeatures), ParameterRole.Bias);
            Init.Uniform(Bias.Value, bound, rng);
        }
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter<T> Weight { get; }
    public Parameter<T>? Bias { get; }
    public override string Kind => "Linear";
    public override IEnumerable<Parameter<T>> OwnParameters => Bias is null ? [Weight] : [Weight, Bias];

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        string expected = $"(N, {InFeatures})";
        if (input.Length != 2) throw ShapeError(expected, input, $"expected a rank-2 tensor, got rank {input.Length}");
        if (input[1] != InFeatures) throw ShapeError(expected, input, $"expected {InFeatures} features, got {input[1]}");
        return [input[0], OutFeatures];
    }

    public override long MacsPerImage(ReadOnlySpan<int> input) => (long)InFeatures * OutFeatures;

    public override Tensor<T> Forward(Tensor<T> x)
    {
        var shape = OutputShape(x.Shape);
        var y = Tensor<T>.Reuse(ref _output, false, shape);
        int n = x.Dim(0);
        Gemm.NT<T>(n, OutFeatures, InFeatures, x.Span, InFeatures, Weight.Value.Span, InFeatures, y.Span, OutFeatures, accumulate: false);
        if (Bias is not null)
            for (int i = 0; i < n; i++) Elementwise.AddInPlace<T>(y.Span.Slice(i * OutFeatures, OutFeatures), Bias.Value.Span);
        _input = x;
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var x = _input ?? throw new InvalidOperationException($"{Label}: Backward called before Forward");
        int n = x.Dim(0);
        var scratch = Tensor<T>.Reuse(ref _scratch, false, n * OutFeatures);
        Gemm.TN<T>(OutFeatures, InFeatures, n, dy.Span, OutFeatures, x.Span, InFeatures, Weight.Grad.Span, InFeatures, accumulate: true, scratch.Span);
        if (Bias is not null)
            for (int i = 0; i < n; i++) Elementwise.AddInPlace<T>(Bias.Grad.Span, dy.Span.Slice(i * OutFeatures, OutFeatures));
        var dx = Tensor<T>.Reuse(ref _inputGrad, false, x.ShapeArray);
        Gemm.NN<T>(n, InFeatures, OutFeatures, dy.Span, OutFeatures, Weight.Value.Span, InFeatures, dx.Span, InFeatures, accumulate: false);
        return dx;
    }
}
