namespace ResNetSharp.Onnx;

/// <summary>
/// A tensor flowing through an ONNX graph: a row-major shape and either float32 data (activations, weights) or int64
/// data (shapes, pads, indices). Values are never written after they are made, so ops may share arrays (Reshape,
/// Flatten, Identity return views).
/// </summary>
internal sealed class Value
{
    /// <summary>The largest tensor a graph may make or hold: 2^28 elements (1 GiB of float32).</summary>
    public const long MaxElements = 1L << 28;

    public Value(int[] shape, float[] data)
    {
        if (Count(shape) != data.Length) throw new ArgumentException($"{data.Length} floats for shape {Str(shape)}");
        Shape = shape; F = data;
    }

    public Value(int[] shape, long[] data)
    {
        if (Count(shape) != data.Length) throw new ArgumentException($"{data.Length} integers for shape {Str(shape)}");
        Shape = shape; L = data;
    }

    public int[] Shape { get; }
    public float[]? F { get; }
    public long[]? L { get; }
    public bool IsFloat => F is not null;
    public int Length => F?.Length ?? L!.Length;
    public int Rank => Shape.Length;

    /// <summary>
    /// A float tensor whose contents are unspecified (ops overwrite every element): a recycled array from the running
    /// graph's <see cref="BufferPool"/> when one of the length is free, else a new one.
    /// </summary>
    public static Value Floats(int[] shape)
    {
        int n = Count(shape);
        return new(shape, Pool?.Rent(n) ?? new float[n]);
    }

    /// <summary>The pool of the graph running on this thread, if any.</summary>
    [ThreadStatic] internal static BufferPool? Pool;
    public static Value Longs(int[] shape) => new(shape, new long[Count(shape)]);
    public static Value Scalar(long v) => new([], [v]);
    public static Value Vector(long[] v) => new([v.Length], v);

    /// <summary>The float data; an int64 tensor here is an error naming <paramref name="what"/>.</summary>
    public float[] Float(string what) => F ?? throw new InvalidDataException($"{what} must be a float tensor, got int64 {Str(Shape)}");

    /// <summary>The data as int64 (float data converted when integral), for shape-like inputs.</summary>
    public long[] Long(string what)
    {
        if (L is not null) return L;
        var r = new long[F!.Length];
        for (int i = 0; i < r.Length; i++)
        {
            if (F[i] != MathF.Round(F[i])) throw new InvalidDataException($"{what} must hold integers, got {F[i]}");
            r[i] = (long)F[i];
        }
        return r;
    }

    /// <summary>Same data, new shape (no copy).</summary>
    public Value WithShape(int[] shape) => F is not null ? new Value(shape, F) : new Value(shape, L!);

    /// <summary>Element count of a shape; negative dimensions or more than <see cref="MaxElements"/> are an error.</summary>
    public static int Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new InvalidDataException($"negative dimension in shape {Str(shape)}");
            n *= d;
            if (n > MaxElements) throw new InvalidDataException($"shape {Str(shape)} has more than {MaxElements} elements");
        }
        return (int)n;
    }

    /// <summary>A shape from int64 dimensions, each checked to fit.</summary>
    public static int[] ToShape(ReadOnlySpan<long> dims, string what)
    {
        var s = new int[dims.Length];
        for (int i = 0; i < s.Length; i++)
        {
            if (dims[i] < 0 || dims[i] > int.MaxValue) throw new InvalidDataException($"{what}: invalid dimension {dims[i]} in ({string.Join(", ", dims.ToArray())})");
            s[i] = (int)dims[i];
        }
        try { Count(s); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{what}: {e.Message}"); }
        return s;
    }

    public static string Str(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";
    public override string ToString() => $"{(IsFloat ? "float" : "int64")}{Str(Shape)}";
}

/// <summary>
/// Float arrays by exact length, handed back by a graph run when no live value refers to them any more, so that the
/// next node (or the next run) reuses them instead of allocating and zeroing megabytes per node.
/// </summary>
internal sealed class BufferPool
{
    private const int PerLength = 4;

    /// <summary>Tests set this to fill returned arrays with NaN, so that an op relying on fresh zeros is caught.</summary>
    internal static volatile bool Poison;
    private readonly Dictionary<int, Stack<float[]>> _free = new();

    public float[]? Rent(int length) =>
        length >= 64 && _free.TryGetValue(length, out var s) && s.Count > 0 ? s.Pop() : null;

    public void Return(float[] a)
    {
        if (a.Length < 64) return;
        if (Poison) Array.Fill(a, float.NaN);
        if (!_free.TryGetValue(a.Length, out var s)) _free[a.Length] = s = new Stack<float[]>();
        if (s.Count < PerLength) s.Push(a);
    }
}
