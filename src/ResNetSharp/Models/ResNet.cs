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
    }

    public string Architecture { get; }
    public ResNetOptions Options { get; }
    public Conv2d<T> Stem => (Conv2d<T>)this["conv1"];
    public Linear<T> Fc => (Linear<T>)this["fc"];
    public override string Kind => "ResNet";

    /// <summary>Whether Backward computes dL/d(input); off by default since training needs only parameter gradients.</summary>
    public bool ComputeInputGradient
    {
        get => Stem.ComputeInputGradient;
        set => Stem.ComputeInputGradient = value;
    }

    /// <summary>The globally pooled features (N, C) that fc reads: the embedding of each image.</summary>
    public Tensor<T> ForwardFeatures(Tensor<T> x)
    {
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
