using System.Numerics;
using ResNetSharp.Kernels;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>
/// BatchNorm2d as in PyTorch: in training, normalise with the batch mean and biased variance and update the running
/// mean and the unbiased running variance with momentum 0.1; in evaluation, normalise with the running statistics.
/// </summary>
public sealed class BatchNorm2d<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _input, _output, _inputGrad, _scale, _shift;
    private readonly double[] _mean, _invStd, _variance;
    private bool _forwardWasTraining, _reluFused;

    public BatchNorm2d(int channels, double eps = 1e-5, double momentum = 0.1)
    {
        if (channels <= 0) throw new ArgumentException($"BatchNorm2d: channel count must be positive, got {channels}");
        Channels = channels; Eps = eps; Momentum = momentum;
        Weight = new Parameter<T>("weight", new Tensor<T>(channels), ParameterRole.NormScale);
        Weight.Value.Fill(T.One);
        Bias = new Parameter<T>("bias", new Tensor<T>(channels), ParameterRole.NormShift);
        RunningMean = new Tensor<T>(channels);
        RunningVar = new Tensor<T>(channels);
        RunningVar.Fill(T.One);
        _mean = new double[channels];
        _invStd = new double[channels];
        _variance = new double[channels];
    }

    public int Channels { get; }
    public double Eps { get; }
    public double Momentum { get; }
    public Parameter<T> Weight { get; }
    public Parameter<T> Bias { get; }
    public Tensor<T> RunningMean { get; }
    public Tensor<T> RunningVar { get; }
    /// <summary>Training batches seen, as PyTorch's num_batches_tracked.</summary>
    public long NumBatchesTracked { get; set; }

    public override string Kind => "BatchNorm2d";
    public override IEnumerable<Parameter<T>> OwnParameters => [Weight, Bias];
    public override IEnumerable<(string, Tensor<T>)> OwnBuffers => [("running_mean", RunningMean), ("running_var", RunningVar)];

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        ExpectNchw(input, Channels);
        return input.ToArray();
    }

    public override Tensor<T> Forward(Tensor<T> x) => Forward(x, relu: false);

    /// <summary>
    /// Whether layers[i] is a BN that a ReLU directly follows: Sequential and residual blocks run such a pair as one
    /// pass (<see cref="Forward(Tensor{T}, bool)"/>), and skip the ReLU in both directions.
    /// </summary>
    internal static bool FusesReluAt(IReadOnlyList<Module<T>> layers, int i) =>
        layers[i] is BatchNorm2d<T> && i + 1 < layers.Count && layers[i + 1] is ReLU<T>;

    /// <summary>Whether layers[i] is a ReLU that the BN before it has taken over.</summary>
    internal static bool IsFusedReluAt(IReadOnlyList<Module<T>> layers, int i) => i > 0 && FusesReluAt(layers, i - 1);

    /// <summary>
    /// The normalisation followed by max(·, 0) in the same pass over the data, for a BN that a ReLU follows (blocks
    /// and Sequential run the pair this way); Backward then includes the ReLU's gradient.
    /// </summary>
    internal Tensor<T> Forward(Tensor<T> x, bool relu)
    {
        Normalisation(x);
        var y = Tensor<T>.Reuse(ref _output, false, x.ShapeArray);
        BatchNormKernel.ScaleShift(x.N, Channels, x.H * x.W, x.Span, _scale!.Span, _shift!.Span, y.Span, relu);
        _reluFused = relu;
        return y;
    }

    /// <summary>
    /// output = max(BN(x) + residual, 0): a residual block's last BN, its add and its final ReLU in one pass, where
    /// Forward then the add would write BN(x) and read it back. Backward then takes the gradient of BN(x), as after
    /// Forward(x) (the add's ReluBackward gives it).
    /// </summary>
    internal void ForwardAddRelu(Tensor<T> x, Tensor<T> residual, Tensor<T> output)
    {
        Normalisation(x);
        BatchNormKernel.ScaleShift(x.N, Channels, x.H * x.W, x.Span, _scale!.Span, _shift!.Span, output.Span, relu: true, residual: residual.Span);
        _reluFused = false;
    }

    // The batch (training) or running statistics folded with γ and β into y = x·scale + shift (_scale, _shift);
    // records x for Backward.
    private void Normalisation(Tensor<T> x)
    {
        OutputShape(x.Shape);
        int n = x.N, c = Channels, plane = x.H * x.W;
        if (IsTraining)
        {
            if ((long)n * plane <= 1)
                throw ShapeError($"(N, {c}, H, W) with N·H·W > 1", x.Shape, "training needs more than one value per channel");
            var varBuf = _variance;
            BatchNormKernel.Statistics(n, c, plane, x.Span, _mean, varBuf);
            double unbiased = (double)n * plane / ((double)n * plane - 1);
            var rm = RunningMean.Span; var rv = RunningVar.Span;
            for (int ch = 0; ch < c; ch++)
            {
                rm[ch] = T.CreateTruncating((1 - Momentum) * double.CreateTruncating(rm[ch]) + Momentum * _mean[ch]);
                rv[ch] = T.CreateTruncating((1 - Momentum) * double.CreateTruncating(rv[ch]) + Momentum * varBuf[ch] * unbiased);
                _invStd[ch] = 1.0 / Math.Sqrt(varBuf[ch] + Eps);
            }
            NumBatchesTracked++;
        }
        else
        {
            var rm = RunningMean.Span; var rv = RunningVar.Span;
            for (int ch = 0; ch < c; ch++)
            {
                _mean[ch] = double.CreateTruncating(rm[ch]);
                _invStd[ch] = 1.0 / Math.Sqrt(double.CreateTruncating(rv[ch]) + Eps);
            }
        }
        // Fold γ, β, μ and σ⁻¹ into y = x·scale + shift.
        var scale = Tensor<T>.Reuse(ref _scale, false, c).Span;
        var shift = Tensor<T>.Reuse(ref _shift, false, c).Span;
        var gamma = Weight.Value.Span; var beta = Bias.Value.Span;
        for (int ch = 0; ch < c; ch++)
        {
            double s = double.CreateTruncating(gamma[ch]) * _invStd[ch];
            scale[ch] = T.CreateTruncating(s);
            shift[ch] = T.CreateTruncating(double.CreateTruncating(beta[ch]) - _mean[ch] * s);
        }
        _input = x;
        _forwardWasTraining = IsTraining;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var x = _input ?? throw new InvalidOperationException($"{Label}: Backward called before Forward");
        var dx = GradientBuffers<T>.Rent(ref _inputGrad, x.ShapeArray);
        BatchNormKernel.Backward(x.N, Channels, x.H * x.W, x.Span, dy.Span, _mean, _invStd, Weight.Value.Span,
            _forwardWasTraining, dx.Span, Weight.Grad.Span, Bias.Grad.Span, _reluFused ? _scale!.Span : default, _reluFused ? _shift!.Span : default);
        return dx;
    }
}
