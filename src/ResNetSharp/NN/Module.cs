using System.Numerics;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>
/// A layer or a composition of layers. Forward caches what Backward needs; Backward takes dL/dy, adds the
/// parameter gradients into <see cref="Parameter{T}.Grad"/> and returns dL/dx. Output and gradient tensors are
/// owned by the module and reused on the next call.
/// </summary>
public abstract class Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Dotted path inside the model, as in a PyTorch state dict ("layer1.0.conv1"); empty for the root.</summary>
    public string Name { get; private set; } = "";

    /// <summary>The layer type shown in summaries and errors ("Conv2d").</summary>
    public abstract string Kind { get; }

    /// <summary>True in training mode (batch statistics in BN), false in evaluation mode.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>Direct children, in the order PyTorch registers them.</summary>
    public virtual IEnumerable<(string Name, Module<T> Module)> Children => [];

    /// <summary>This module's own parameters (not its children's).</summary>
    public virtual IEnumerable<Parameter<T>> OwnParameters => [];

    /// <summary>This module's own non-trainable state (BN running statistics).</summary>
    public virtual IEnumerable<(string Name, Tensor<T> Value)> OwnBuffers => [];

    public abstract Tensor<T> Forward(Tensor<T> x);
    public abstract Tensor<T> Backward(Tensor<T> dy);

    /// <summary>The output shape for an input shape, or a <see cref="ShapeMismatchException"/> naming this layer.</summary>
    public abstract int[] OutputShape(ReadOnlySpan<int> input);

    /// <summary>Multiply-adds of this module alone for one image of the given (N,C,H,W) shape.</summary>
    public virtual long MacsPerImage(ReadOnlySpan<int> input) => 0;

    /// <summary>Adds summary rows for this module (leaves) or its children (compositions); returns the output shape.</summary>
    public virtual int[] Describe(ReadOnlySpan<int> input, List<LayerSummary> rows)
    {
        var output = OutputShape(input);
        if (!Children.Any())
        {
            rows.Add(new LayerSummary(Name, Kind, output, OwnParameters.Sum(p => (long)p.Value.Length), MacsPerImage(input)));
            return output;
        }
        var shape = input.ToArray();
        foreach (var (_, child) in Children) shape = child.Describe(shape, rows);
        return shape;
    }

    public void Train(bool training = true)
    {
        IsTraining = training;
        OnModeChanged();
        foreach (var (_, c) in Children) c.Train(training);
    }

    public void Eval() => Train(false);

    /// <summary>
    /// Tells the module tree that parameters or buffers were changed from outside (a weight load, an optimiser
    /// step), so that anything derived from them (packed or folded weights) is rebuilt before the next use.
    /// </summary>
    public void StateChanged()
    {
        OnStateChanged();
        foreach (var (_, c) in Children) c.StateChanged();
    }

    protected virtual void OnStateChanged() { }

    /// <summary>Called by <see cref="Train"/> and <see cref="Eval"/> on every module of the tree.</summary>
    protected virtual void OnModeChanged() { }

    /// <summary>Every parameter with its state-dict name, depth first in registration order.</summary>
    public IEnumerable<(string Name, Parameter<T> Parameter)> NamedParameters()
    {
        foreach (var p in OwnParameters) yield return (Join(Name, p.Name), p);
        foreach (var (_, c) in Children)
            foreach (var np in c.NamedParameters()) yield return np;
    }

    /// <summary>Every buffer (running mean and variance) with its state-dict name.</summary>
    public IEnumerable<(string Name, Tensor<T> Value)> NamedBuffers()
    {
        foreach (var (n, b) in OwnBuffers) yield return (Join(Name, n), b);
        foreach (var (_, c) in Children)
            foreach (var nb in c.NamedBuffers()) yield return nb;
    }

    /// <summary>Every module in the tree, this one first.</summary>
    public IEnumerable<Module<T>> Modules()
    {
        yield return this;
        foreach (var (_, c) in Children)
            foreach (var m in c.Modules()) yield return m;
    }

    public long ParameterCount => NamedParameters().Sum(p => (long)p.Parameter.Value.Length);

    public void ZeroGrad()
    {
        foreach (var (_, p) in NamedParameters()) p.Grad.Clear();
    }

    /// <summary>Gives every module in the tree its dotted name; called once by whoever builds the root.</summary>
    public void AssignNames(string prefix = "")
    {
        Name = prefix;
        foreach (var (n, c) in Children) c.AssignNames(Join(prefix, n));
    }

    /// <summary>The name used in error messages: the dotted path and the type, e.g. "layer1.0.conv1 (Conv2d)".</summary>
    public string Label => Name.Length == 0 ? Kind : $"{Name} ({Kind})";

    protected static string Join(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";

    protected ShapeMismatchException ShapeError(string expected, ReadOnlySpan<int> actual, string? why = null) =>
        new(Label, expected, actual.ToArray(), why);

    /// <summary>Checks rank 4 and, when given, the channel count; returns (N,C,H,W).</summary>
    protected (int N, int C, int H, int W) ExpectNchw(ReadOnlySpan<int> input, int channels = -1)
    {
        string expected = channels < 0 ? "(N, C, H, W)" : $"(N, {channels}, H, W)";
        if (input.Length != 4) throw ShapeError(expected, input, $"expected a rank-4 NCHW tensor, got rank {input.Length}");
        if (channels >= 0 && input[1] != channels) throw ShapeError(expected, input, $"expected {channels} channels, got {input[1]}");
        return (input[0], input[1], input[2], input[3]);
    }
}

/// <summary>A trainable tensor and the gradient Backward accumulates into it.</summary>
public sealed class Parameter<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public Parameter(string name, Tensor<T> value, ParameterRole role)
    {
        Name = name;
        Value = value;
        Grad = new Tensor<T>(value.ShapeArray);
        Role = role;
    }

    /// <summary>Local name ("weight", "bias").</summary>
    public string Name { get; }
    public Tensor<T> Value { get; }
    public Tensor<T> Grad { get; }
    /// <summary>What the parameter is, so that optimisers can leave BN and biases out of weight decay.</summary>
    public ParameterRole Role { get; }
}

public enum ParameterRole { Weight, Bias, NormScale, NormShift }

/// <summary>One row of a model summary: a leaf layer, its output shape, parameters and multiply-adds per image.</summary>
public sealed record LayerSummary(string Name, string Kind, int[] OutputShape, long Parameters, long Macs);

/// <summary>A tensor that a layer cannot take: the message names the layer, the shape it expects and the one it got.</summary>
public sealed class ShapeMismatchException(string layer, string expected, int[] actual, string? why = null)
    : ArgumentException($"{layer}: {why ?? "unexpected input shape"}; expected {expected}, got {Tensor<float>.ShapeString(actual)}")
{
    public string Layer { get; } = layer;
    public string Expected { get; } = expected;
    public int[] Actual { get; } = actual;
}
