using System.Numerics;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Models;

/// <summary>
/// A ResNet laid out like torchvision's: conv1, bn1, relu, [maxpool], layer1..layerK, avgpool, flatten, fc, so that
/// parameter names equal PyTorch state-dict keys. Built by <see cref="ResNets"/>.
/// </summary>
public sealed class ResNet<T> : Sequential<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    internal ResNet(string architecture, ResNetOptions options, IEnumerable<(string, Module<T>)> layers) : base(layers)
    {
        Architecture = architecture;
        Options = options;
        AssignNames();
        // Training needs the parameters' gradients only; the image's gradient (a whole strided convolution's dx for
        // the ImageNet stem, 5% of a resnet18 step) is computed on request.
        Stem.ComputeInputGradient = false;
    }

    private InferencePlan? _plan;

    public string Architecture { get; }

    /// <summary>
    /// In evaluation mode, run the fused NHWC path (BN folded, ReLU and residual fused, packed weights). It keeps no
    /// activations, so set this to false to call Backward after an evaluation-mode forward. Ignored for double.
    /// </summary>
    public bool FusedInference { get; set; } = true;

    /// <summary>
    /// In the fused path, run stride-1 3x3 convolutions as Winograd F(4x4,3x3) (4x fewer multiplies), or F(2x2,3x3)
    /// (2.25x fewer) where the image makes too few 4x4 tiles, such as 14x14 at batch 1; results differ from the direct
    /// sum by rounding, within 1e-4 of each convolution's output scale.
    /// </summary>
    public bool WinogradInference
    {
        get => _winograd;
        set { _winograd = value; _plan = null; }
    }

    private bool _winograd = true;

    private bool UsePlan => !IsTraining && FusedInference && typeof(T) == typeof(float);

    public override Tensor<T> Forward(Tensor<T> x)
    {
        if (!UsePlan) { _lastForwardFused = false; return base.Forward(x); }
        _lastForwardFused = true;
        return (Tensor<T>)(object)Plan(x).Run((Tensor<float>)(object)x, featuresOnly: false);
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        if (_lastForwardFused)
            throw new InvalidOperationException("the last forward pass ran the fused inference path, which keeps no activations; " +
                "set FusedInference = false (or call Train()) before a forward pass you want to backpropagate through");
        using (_gradients.Activate()) return base.Backward(dy);
    }

    private bool _lastForwardFused;
    private readonly GradientBuffers<T> _gradients = new();

    private InferencePlan Plan(Tensor<T> x)
    {
        if (_plan is null || !x.Shape.SequenceEqual(_plan.InputShape))
        {
            _plan = null;  // drop the old plan's buffers before building the new one
            _plan = new InferencePlan((ResNet<float>)(object)this, x.ShapeArray, _winograd);
        }
        _plan.Profile = ProfileInference ? _plan.Profile ?? [] : null;
        return _plan;
    }

    /// <summary>Per-step times of the fused path's last forward pass, when <see cref="ProfileInference"/> is on.</summary>
    public IReadOnlyList<InferencePlan.StepTime>? LastInferenceProfile => _plan?.Profile;

    /// <summary>Record per-step times in the fused evaluation path (a little overhead per step).</summary>
    public bool ProfileInference { get; set; }

    protected override void OnStateChanged() => _plan = null;
    protected override void OnModeChanged() => _plan = null;
    public ResNetOptions Options { get; }
    public Conv2d<T> Stem => (Conv2d<T>)this["conv1"];
    public Linear<T> Fc => (Linear<T>)this["fc"];
    public override string Kind => "ResNet";

    /// <summary>
    /// Whether Backward computes dL/d(input) (and returns it; null otherwise); off by default since training needs
    /// only parameter gradients.
    /// </summary>
    public bool ComputeInputGradient
    {
        get => Stem.ComputeInputGradient;
        set => Stem.ComputeInputGradient = value;
    }

    /// <summary>The globally pooled features (N, C) that fc reads: the embedding of each image.</summary>
    public Tensor<T> ForwardFeatures(Tensor<T> x)
    {
        if (UsePlan)
        {
            _lastForwardFused = true;
            return (Tensor<T>)(object)Plan(x).Run((Tensor<float>)(object)x, featuresOnly: true);
        }
        _lastForwardFused = false;
        foreach (var (name, m) in Children)
        {
            if (name == "fc") break;
            x = m.Forward(x);
        }
        return x;
    }

    /// <summary>All residual blocks, in order.</summary>
    public IEnumerable<ResidualBlock<T>> Blocks => Modules().OfType<ResidualBlock<T>>();

    /// <summary>Layer-by-layer shapes, parameters and multiply-adds for one input of shape (C,H,W).</summary>
    public ModelSummary Summarize(int channels, int height, int width)
    {
        var rows = new List<LayerSummary>();
        var output = Describe([1, channels, height, width], rows);
        return new ModelSummary(Architecture, [channels, height, width], output[1..], rows, ParameterCount);
    }
}

/// <summary>Everything a summary prints: rows per leaf layer and the totals.</summary>
public sealed record ModelSummary(string Architecture, int[] InputShape, int[] OutputShape, IReadOnlyList<LayerSummary> Layers, long Parameters)
{
    /// <summary>Multiply-adds per image: convolutions and the fully connected layer, as torchvision counts its GFLOPS.</summary>
    public long Macs => Layers.Sum(l => l.Macs);
}
