using System.Numerics;
using System.Runtime.InteropServices;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels;

/// <summary>
/// Elementwise ops: ReLU and its gradient, and the residual add. Vectorised on <see cref="Vector{T}"/> with a scalar
/// tail, and split over the worker threads in chunks of <see cref="ChunkSize"/> elements when the tensor is large.
/// </summary>
public static class Elementwise
{
    internal const int ChunkSize = 1 << 16;

    /// <summary>y = max(x, 0).</summary>
    public static void Relu<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> =>
        Chunked(x, default, y, static (a, _, d) => ReluChunk(a, d));

    /// <summary>dx = dy where y &gt; 0, else 0. At x = 0 the gradient is 0, as in PyTorch's threshold_backward.</summary>
    public static void ReluBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T> =>
        Chunked(y, dy, dx, static (a, b, d) => ReluBackwardChunk(a, b, d));

    /// <summary>y = a + b.</summary>
    public static void Add<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> =>
        Chunked(a, b, y, static (p, q, d) => AddChunk(p, q, d));

    /// <summary>y = max(a + b, 0): a residual block's add and final ReLU in one pass.</summary>
    public static void AddRelu<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> =>
        Chunked(a, b, y, static (p, q, d) => AddReluChunk(p, q, d));

    /// <summary>y += x.</summary>
    public static void AddInPlace<T>(Span<T> y, ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T> =>
        AddChunk(y, x, y);

    private static void ReluChunk<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            var yv = MemoryMarshal.Cast<T, Vector<T>>(y);
            for (int v = 0; v < xv.Length; v++) yv[v] = Vector.Max(xv[v], Vector<T>.Zero);
            i = xv.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++) y[i] = x[i] > T.Zero ? x[i] : T.Zero;
    }

    private static void ReluBackwardChunk<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var yv = MemoryMarshal.Cast<T, Vector<T>>(y);
            var dyv = MemoryMarshal.Cast<T, Vector<T>>(dy);
            var dxv = MemoryMarshal.Cast<T, Vector<T>>(dx);
            for (int v = 0; v < yv.Length; v++) dxv[v] = Vector.ConditionalSelect(Vector.GreaterThan(yv[v], Vector<T>.Zero), dyv[v], Vector<T>.Zero);
            i = yv.Length * Vector<T>.Count;
        }
        for (; i < y.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
    }

    private static void AddChunk<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var av = MemoryMarshal.Cast<T, Vector<T>>(a);
            var bv = MemoryMarshal.Cast<T, Vector<T>>(b);
            var yv = MemoryMarshal.Cast<T, Vector<T>>(y);
            for (int v = 0; v < av.Length; v++) yv[v] = av[v] + bv[v];
            i = av.Length * Vector<T>.Count;
        }
        for (; i < a.Length; i++) y[i] = a[i] + b[i];
    }

    private static void AddReluChunk<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var av = MemoryMarshal.Cast<T, Vector<T>>(a);
            var bv = MemoryMarshal.Cast<T, Vector<T>>(b);
            var yv = MemoryMarshal.Cast<T, Vector<T>>(y);
            for (int v = 0; v < av.Length; v++) yv[v] = Vector.Max(av[v] + bv[v], Vector<T>.Zero);
            i = av.Length * Vector<T>.Count;
        }
        for (; i < a.Length; i++)
        {
            T s = a[i] + b[i];
            y[i] = s > T.Zero ? s : T.Zero;
        }
    }

    private delegate void ChunkOp<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y);

    // Splits [0, length) into chunks over the worker pool; spans cannot cross into lambdas, so the arrays are pinned
    // by the caller's tensors (pinned storage) and re-sliced from pointers here.
    private static unsafe void Chunked<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, ChunkOp<T> op) where T : unmanaged
    {
        int length = y.Length;
        if (length <= ChunkSize) { op(a, b, y); return; }
        fixed (T* ap = a) fixed (T* bp = b) fixed (T* yp = y)
        {
            nint pa = (nint)ap, pb = (nint)bp, py = (nint)yp;
            bool hasB = !b.IsEmpty;
            WorkerPool.For((length + ChunkSize - 1) / ChunkSize, chunk =>
            {
                int start = chunk * ChunkSize, count = Math.Min(ChunkSize, length - start);
                op(new ReadOnlySpan<T>((T*)pa + start, count), hasB ? new ReadOnlySpan<T>((T*)pb + start, count) : default, new Span<T>((T*)py + start, count));
            });
        }
    }
}
