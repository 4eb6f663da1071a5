using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResNetSharp.Tensors;

/// <summary>
/// A dense, row-major tensor of <typeparamref name="T"/> (float for the engine, double for gradient checks).
/// Activations are NCHW at the public API. Storage is pinned and 64-byte aligned so that vector loads never
/// straddle a cache line at the start of a row.
/// </summary>
/// <remarks>
/// Layers own their output tensors and reuse them from call to call (<see cref="Reuse"/>): the tensor a
/// layer returns is valid until that layer runs again. <see cref="Clone"/> it to keep it.
/// </remarks>
public sealed class Tensor<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private int[] _shape;
    private TensorStorage<T> _storage;

    public Tensor(params int[] shape)
    {
        _shape = CheckedShape(shape);
        _storage = new TensorStorage<T>(ElementCount(_shape));
    }

    private Tensor(int[] shape, TensorStorage<T> storage)
    {
        _shape = shape;
        _storage = storage;
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor<T> FromArray(ReadOnlySpan<T> data, params int[] shape)
    {
        var t = new Tensor<T>(shape);
        if (data.Length != t.Length)
            throw new ArgumentException($"data has {data.Length} elements but shape {ShapeString(shape)} needs {t.Length}");
        data.CopyTo(t.Span);
        return t;
    }

    public ReadOnlySpan<int> Shape => _shape;
    public int[] ShapeArray => (int[])_shape.Clone();
    public int Rank => _shape.Length;
    public int Length => ElementCount(_shape);
    public int Dim(int axis) => _shape[axis];

    public int N => _shape[0];
    public int C => _shape[1];
    public int H => _shape[2];
    public int W => _shape[3];

    public Span<T> Span => _storage.Span[..Length];

    public T this[params int[] index]
    {
        get => Span[FlatIndex(index)];
        set => Span[FlatIndex(index)] = value;
    }

    /// <summary>Whether the two tensors are views of the same storage (one a <see cref="Reshape"/> of the other, or the same).</summary>
    internal bool SharesStorage(Tensor<T> other) => ReferenceEquals(_storage, other._storage);

    /// <summary>A tensor of the new shape sharing this one's storage (no copy).</summary>
    public Tensor<T> Reshape(params int[] shape)
    {
        var s = CheckedShape(shape);
        if (ElementCount(s) != Length)
            throw new ArgumentException($"cannot reshape {ShapeString(_shape)} ({Length} elements) to {ShapeString(s)}");
        return new Tensor<T>(s, _storage);
    }

    public Tensor<T> Clone()
    {
        var t = new Tensor<T>(_shape);
        Span.CopyTo(t.Span);
        return t;
    }

    public void Clear() => Span.Clear();
    public void Fill(T value) => Span.Fill(value);
    public void CopyFrom(Tensor<T> other)
    {
        if (!other.Shape.SequenceEqual(Shape))
            throw new ArgumentException($"cannot copy {ShapeString(other._shape)} into {ShapeString(_shape)}");
        other.Span.CopyTo(Span);
    }

    public bool HasShape(params int[] shape) => Shape.SequenceEqual(shape);

    /// <summary>
    /// Returns <paramref name="buffer"/> reshaped to <paramref name="shape"/>, allocating only when it is null or
    /// too small. Contents are unspecified unless <paramref name="clear"/>. This is how layers keep one output
    /// and one gradient buffer each instead of allocating per call.
    /// </summary>
    public static Tensor<T> Reuse(ref Tensor<T>? buffer, bool clear, params int[] shape)
    {
        if (buffer is null || buffer._storage.Capacity < ElementCount(shape))
            buffer = new Tensor<T>(shape);
        else if (!buffer.Shape.SequenceEqual(shape))
            buffer._shape = CheckedShape(shape);
        if (clear) buffer.Clear();
        return buffer;
    }

    public override string ToString() => $"Tensor<{typeof(T).Name}>{ShapeString(_shape)}";

    public static string ShapeString(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";

    public static int ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return checked((int)n);
    }

    private static int[] CheckedShape(int[] shape)
    {
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"negative dimension in shape {ShapeString(shape)}");
        long n = 1;
        foreach (int d in shape) n *= d;
        if (n > Array.MaxLength) throw new ArgumentException($"shape {ShapeString(shape)} has {n} elements, more than one tensor can hold");
        return (int[])shape.Clone();
    }

    private int FlatIndex(int[] index)
    {
        if (index.Length != _shape.Length)
            throw new ArgumentException($"index of rank {index.Length} for a tensor of rank {_shape.Length}");
        int flat = 0;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)_shape[i]) throw new IndexOutOfRangeException($"index {index[i]} on axis {i} of {ShapeString(_shape)}");
            flat = flat * _shape[i] + index[i];
        }
        return flat;
    }
}

/// <summary>Pinned, 64-byte-aligned backing store; the array is over-allocated and the span starts on the boundary.</summary>
internal sealed class TensorStorage<T> where T : unmanaged
{
    public const int Alignment = 64;
    private readonly T[] _array;
    private readonly int _offset;

    public TensorStorage(int length)
    {
        int pad = Alignment / Unsafe.SizeOf<T>();
        _array = GC.AllocateArray<T>(length + pad, pinned: true);
        unsafe
        {
            nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            int misalignedBytes = (int)(address & (Alignment - 1));
            _offset = misalignedBytes == 0 ? 0 : (Alignment - misalignedBytes) / Unsafe.SizeOf<T>();
        }
        Capacity = length;
    }

    public int Capacity { get; }
    public Span<T> Span => new(_array, _offset, Capacity);
}
