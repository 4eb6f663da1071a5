namespace ResNetSharp.Onnx.Ops;

internal enum BinaryOp { Add, Sub, Mul, Div }

internal static partial class OpSet
{
    /// <summary>
    /// Add, Sub, Mul, Div with NumPy (multidirectional) broadcasting, the rule of every opset from 7 on. Float and int64
    /// (shape arithmetic); int64 division truncates toward zero as ONNX Runtime's does.
    /// </summary>
    private static OpFn Binary(Attrs a, BinaryOp op) => inputs =>
    {
        var x = In(inputs, 0, a, "A"); var y = In(inputs, 1, a, "B");
        return [Broadcast(x, y, op, a)];
    };

    /// <summary>Sum of any number of inputs, broadcasting (opset 8+; at opset 7 the shapes must agree, which broadcasting also accepts).</summary>
    private static OpFn Sum(Attrs a) => inputs =>
    {
        if (inputs.Length == 0 || inputs.Any(v => v is null)) throw new InvalidDataException($"{a.Where}: Sum needs at least one input");
        var acc = inputs[0]!;
        for (int i = 1; i < inputs.Length; i++) acc = Broadcast(acc, inputs[i]!, BinaryOp.Add, a);
        return [acc];
    };

    public static int[] BroadcastShape(int[] x, int[] y, Attrs a)
    {
        int rank = Math.Max(x.Length, y.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int dx = i - (rank - x.Length) >= 0 ? x[i - (rank - x.Length)] : 1;
            int dy = i - (rank - y.Length) >= 0 ? y[i - (rank - y.Length)] : 1;
            if (dx != dy && dx != 1 && dy != 1)
                throw new InvalidDataException($"{a.Where}: shapes {Value.Str(x)} and {Value.Str(y)} do not broadcast");
            r[i] = dx == 1 ? dy : dx;
        }
        return r;
    }

    /// <summary>Strides of <paramref name="shape"/> aligned right to <paramref name="outShape"/>, 0 on broadcast axes.</summary>
    private static long[] BroadcastStrides(int[] shape, int[] outShape)
    {
        int rank = outShape.Length, off = rank - shape.Length;
        var s = new long[rank];
        long stride = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i + off] = shape[i] == 1 && outShape[i + off] != 1 ? 0 : stride;
            stride *= shape[i];
        }
        return s;
    }

    private static Value Broadcast(Value x, Value y, BinaryOp op, Attrs a)
    {
        var shape = BroadcastShape(x.Shape, y.Shape, a);
        if (x.IsFloat != y.IsFloat) throw new InvalidDataException($"{a.Where}: cannot combine {x} with {y}: the types differ");
        if (x.IsFloat)
        {
            var r = Value.Floats(shape);
            var xs = x.F!; var ys = y.F!; var rs = r.F!;
            if (x.Length == r.Length && y.Length == r.Length && op == BinaryOp.Add)
            {
                ResNetSharp.Kernels.Elementwise.Add<float>(xs, ys, rs);
                return r;
            }
            Loop(x.Shape, y.Shape, shape, (o, i, j, n, si, sj) =>
            {
                for (int k = 0; k < n; k++, i += si, j += sj)
                    rs[o + k] = op switch
                    {
                        BinaryOp.Add => xs[i] + ys[j],
                        BinaryOp.Sub => xs[i] - ys[j],
                        BinaryOp.Mul => xs[i] * ys[j],
                        _ => xs[i] / ys[j],
                    };
            });
            return r;
        }
        else
        {
            var r = Value.Longs(shape);
            var xs = x.L!; var ys = y.L!; var rs = r.L!;
            Loop(x.Shape, y.Shape, shape, (o, i, j, n, si, sj) =>
            {
                for (int k = 0; k < n; k++, i += si, j += sj)
                    rs[o + k] = op switch
                    {
                        BinaryOp.Add => xs[i] + ys[j],
                        BinaryOp.Sub => xs[i] - ys[j],
                        BinaryOp.Mul => xs[i] * ys[j],
                        _ => ys[j] == 0 ? throw new InvalidDataException($"{a.Where}: integer division by zero") : xs[i] / ys[j],
                    };
            });
            return r;
        }
    }

    private delegate void RowFn(int outOffset, int xOffset, int yOffset, int count, int xStep, int yStep);

    /// <summary>Walks the output row by row (last axis), giving each row's offsets into x and y and their steps along it.</summary>
    private static void Loop(int[] xShape, int[] yShape, int[] outShape, RowFn row)
    {
        int rank = outShape.Length;
        int total = Value.Count(outShape);
        if (total == 0) return;
        if (rank == 0) { row(0, 0, 0, 1, 0, 0); return; }
        var sx = BroadcastStrides(xShape, outShape); var sy = BroadcastStrides(yShape, outShape);
        int inner = outShape[rank - 1];
        var idx = new int[rank];
        for (int o = 0; o < total; o += inner)
        {
            long ox = 0, oy = 0;
            for (int d = 0; d < rank - 1; d++) { ox += idx[d] * sx[d]; oy += idx[d] * sy[d]; }
            row(o, (int)ox, (int)oy, inner, (int)sx[rank - 1], (int)sy[rank - 1]);
            for (int d = rank - 2; d >= 0; d--)
            {
                if (++idx[d] < outShape[d]) break;
                idx[d] = 0;
            }
        }
    }

    /// <summary>
    /// Softmax. Before opset 13 the input is viewed as 2-D, (prod(dims before axis), prod(rest)), and each row is
    /// normalised (default axis 1); from opset 13 only the given axis is (default −1). The row maximum is subtracted
    /// before exp for stability.
    /// </summary>
    private static OpFn Softmax(Attrs a, int opset)
    {
        long axisAttr = a.Int("axis", opset >= 13 ? -1 : 1);
        return inputs =>
        {
            var x = In(inputs, 0, a, "input");
            var xs = x.Float($"{a.Where}: input");
            int axis = Axis(axisAttr, x.Rank, a);
            int outer = Value.Count(x.Shape.AsSpan(0, axis)), len, inner;
            if (opset >= 13) { len = x.Rank == 0 ? 1 : x.Shape[axis]; inner = Value.Count(x.Shape.AsSpan(axis + 1)); }
            else { len = Value.Count(x.Shape.AsSpan(axis)); inner = 1; }
            var y = Value.Floats(x.Shape); var ys = y.F!;
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                {
                    int baseIdx = o * len * inner + i;
                    float max = float.NegativeInfinity;
                    for (int k = 0; k < len; k++) max = Math.Max(max, xs[baseIdx + k * inner]);
                    double sum = 0;
                    for (int k = 0; k < len; k++) { float e = MathF.Exp(xs[baseIdx + k * inner] - max); ys[baseIdx + k * inner] = e; sum += e; }
                    float invSum = (float)(1 / sum);
                    for (int k = 0; k < len; k++) ys[baseIdx + k * inner] *= invSum;
                }
            return [y];
        };
    }
}
