using System.Numerics;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>Modules run in order; backward runs them in reverse. Children are named "0", "1", … unless given names.</summary>
public class Sequential<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly List<(string Name, Module<T> Module)> _children = [];
    private Module<T>[]? _layers;
    private Module<T>[] Layers => _layers ??= _children.Select(c => c.Module).ToArray();

    public Sequential(params Module<T>[] modules)
    {
        foreach (var m in modules) _children.Add((_children.Count.ToString(), m));
    }

    public Sequential(IEnumerable<(string Name, Module<T> Module)> named) => _children.AddRange(named);

    public override string Kind => "Sequential";
    public override IEnumerable<(string Name, Module<T> Module)> Children => _children;
    public int Count => _children.Count;
    public Module<T> this[int index] => _children[index].Module;
    public Module<T> this[string name] => _children.First(c => c.Name == name).Module;

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        var shape = input.ToArray();
        foreach (var (_, m) in _children) shape = m.OutputShape(shape);
        return shape;
    }

    public override long MacsPerImage(ReadOnlySpan<int> input)
    {
        long total = 0;
        var shape = input.ToArray();
        foreach (var (_, m) in _children) { total += m.MacsPerImage(shape); shape = m.OutputShape(shape); }
        return total;
    }

    // Leaves are timed here; blocks time their own layers (a block's total would count them twice).
    public override Tensor<T> Forward(Tensor<T> x)
    {
        var profile = LayerProfile.Current;
        for (int i = 0; i < _children.Count; i++)
        {
            var m = _children[i].Module;
            long start = profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            var shape = profile is null ? null : x.ShapeArray;
            bool fused = BatchNorm2d<T>.FusesReluAt(Layers, i);
            x = fused ? ((BatchNorm2d<T>)m).Forward(x, relu: true) : m.Forward(x);
            if (fused) i++;
            if (profile is not null && m is not Sequential<T> && m.Children.All(c => c.Module is not Conv2d<T>))
                profile.Add(m.Label, "forward", m.MacsPerImage(shape!) * shape![0], start);
        }
        return x;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var profile = LayerProfile.Current;
        for (int i = _children.Count - 1; i >= 0; i--)
        {
            long start = profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
            var m = _children[i].Module;
            if (BatchNorm2d<T>.IsFusedReluAt(Layers, i)) continue;
            var dx = m.Backward(dy);
            GradientBuffers<T>.Release(dy, keep: dx);
            dy = dx;
            if (profile is not null && m is not Sequential<T> && m.Children.All(c => c.Module is not Conv2d<T>))
                profile.Add(m.Label, "backward", 0, start);
        }
        return dy;
    }
}
