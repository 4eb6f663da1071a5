using System.Numerics;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>
/// The gradient tensors of one model's backward pass, recycled within the pass. Without it every layer keeps a
/// dL/dx tensor of its own, each written once and read once per step, so the pass streamed them from memory: the
/// peak RSS of `resnet bench --arch resnet20 --input 1x28x28 --batch 128 --train` went from 387 MB to 243 MB with
/// them recycled. A stage's layers now pass two or three tensors back and forth, which stay in the last-level cache:
/// `bench/run.sh --ab GradientBuffers.Enabled=false,true --ab-work r20-train --rounds 20` gave 0.971x (noise floor
/// 1.002; a first experiment that recycled only the convolutions' and BNs' dx, 0.935x and 0.967x), resnet18 training
/// at batch 16 0.975x (8 rounds, floor 1.002).
/// <para>
/// A model activates its buffers for its Backward (<see cref="Activate"/>); layers take their dx from
/// <see cref="Rent"/>, which falls back to the layer's own tensor when no pass is active (a layer run on its own,
/// or inside a model that does not recycle). The code that runs the layers (Sequential, residual blocks) gives a
/// gradient back with <see cref="Release"/> once nothing reads it. What a pass returns stays valid until the
/// model's next Backward, as a layer's own tensor would.
/// </para>
/// </summary>
internal sealed class GradientBuffers<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    // Per thread: a model's backward pass runs its layers on the calling thread (kernels fan out inside them).
    [ThreadStatic] private static GradientBuffers<T>? _active;

    private readonly Dictionary<long, Stack<Tensor<T>>> _free = [];
    private readonly HashSet<Tensor<T>> _rented = new(ReferenceEqualityComparer.Instance);

    /// <summary>Makes these buffers the ones layers rent from until the scope ends; everything rented before is free again.</summary>
    public Scope Activate()
    {
        if (!GradientBuffers.Enabled) return new Scope(_active);
        foreach (var t in _rented) Free(t);
        _rented.Clear();
        var previous = _active;
        _active = this;
        return new Scope(previous);
    }

    public readonly struct Scope(GradientBuffers<T>? previous) : IDisposable
    {
        public void Dispose() => _active = previous;
    }

    /// <summary>A tensor of this shape for a layer's dx: a free buffer of the active pass, else the layer's own.</summary>
    public static Tensor<T> Rent(ref Tensor<T>? own, int[] shape)
    {
        var active = _active;
        if (active is null) return Tensor<T>.Reuse(ref own, false, shape);
        long length = 1;
        foreach (int d in shape) length *= d;
        Tensor<T>? t = active._free.TryGetValue(length, out var stack) && stack.Count > 0 ? stack.Pop() : null;
        t = Tensor<T>.Reuse(ref t, false, shape);
        active._rented.Add(t);
        return t;
    }

    /// <summary>
    /// Gives a gradient back once nothing will read it again; <paramref name="keep"/> is what the caller goes on with (a
    /// layer may return a view of its input, such as Flatten's reshape, and then the storage is not free). Tensors
    /// not rented from the active pass are left alone.
    /// </summary>
    public static void Release(Tensor<T> gradient, Tensor<T>? keep = null)
    {
        var active = _active;
        if (active is null || (keep is not null && gradient.SharesStorage(keep)) || !active._rented.Remove(gradient)) return;
        active.Free(gradient);
    }

    private void Free(Tensor<T> t)
    {
        if (!_free.TryGetValue(t.Length, out var stack)) _free[t.Length] = stack = new Stack<Tensor<T>>();
        stack.Push(t);
    }
}

/// <summary>The switch of <see cref="GradientBuffers{T}"/>, outside the generic type so that `bench/run.sh --ab` can set it.</summary>
internal static class GradientBuffers
{
    /// <summary>Whether models recycle their gradients (on by default; off only to test and measure it).</summary>
    internal static bool Enabled = true;
}
