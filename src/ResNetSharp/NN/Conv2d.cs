using System.Numerics;
using ResNetSharp.Kernels;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>2-D convolution: x (N,IC,H,W), weight (OC,IC,KH,KW), optional bias (OC) → y (N,OC,OH,OW).</summary>
public sealed class Conv2d<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _input, _output, _inputGrad, _scratch;

    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool bias = false, Random? rng = null)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernelSize <= 0 || stride <= 0 || padding < 0)
            throw new ArgumentException($"Conv2d: invalid configuration in={inChannels} out={outChannels} k={kernelSize} stride={stride} padding={padding}");
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize; Stride = stride; Padding = padding;
        Weight = new Parameter<T>("weight", new Tensor<T>(outChannels, inChannels, kernelSize, kernelSize), ParameterRole.Weight);
        Init.KaimingNormalFanOut(Weight.Value, rng ?? new Random(0));
        if (bias) Bias = new Parameter<T>("bias", new Tensor<T>(outChannels), ParameterRole.Bias);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public Parameter<T> Weight { get; }
    public Parameter<T>? Bias { get; }
    /// <summary>When false, Backward skips dL/dx (the first layer of a network needs none) and returns null.</summary>
    public bool ComputeInputGradient { get; set; } = true;

    public override string Kind => "Conv2d";
    public override IEnumerable<Parameter<T>> OwnParameters => Bias is null ? [Weight] : [Weight, Bias];

    public ConvGeometry Geometry(int h, int w) => new(InChannels, h, w, OutChannels, KernelSize, KernelSize, Stride, Padding);

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        var (n, _, h, w) = ExpectNchw(input, InChannels);
        string expected = $"(N, {InChannels}, H, W) with H, W >= {Math.Max(1, KernelSize - 2 * Padding)}";
        if (h + 2 * Padding < KernelSize || w + 2 * Padding < KernelSize)
            throw ShapeError(expected, input, $"input {h}x{w} is smaller than the {KernelSize}x{KernelSize} kernel with padding {Padding}");
        var g = Geometry(h, w);
        return [n, OutChannels, g.OutHeight, g.OutWidth];
    }

    public override long MacsPerImage(ReadOnlySpan<int> input) => Geometry(input[2], input[3]).MacsPerImage;

    public override Tensor<T> Forward(Tensor<T> x)
    {
        var shape = OutputShape(x.Shape);
        var g = Geometry(x.H, x.W);
        var y = Tensor<T>.Reuse(ref _output, false, shape);
        var scratch = Tensor<T>.Reuse(ref _scratch, false, Conv2dKernel.ScratchSize<T>(g));
        Conv2dKernel.Forward(g, x.N, x.Span, Weight.Value.Span, Bias is null ? default : Bias.Value.Span, y.Span, scratch.Span);
        _input = x;
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var x = _input ?? throw new InvalidOperationException($"{Label}: Backward called before Forward");
        var g = Geometry(x.H, x.W);
        var scratch = Tensor<T>.Reuse(ref _scratch, false, Conv2dKernel.ScratchSize<T>(g));
        var dx = ComputeInputGradient ? GradientBuffers<T>.Rent(ref _inputGrad, x.ShapeArray) : null;
        Conv2dKernel.Backward(g, x.N, x.Span, Weight.Value.Span, dy.Span, dx is null ? default : dx.Span, Weight.Grad.Span,
            Bias is null ? default : Bias.Grad.Span, scratch.Span);
        return dx!;
    }
}
