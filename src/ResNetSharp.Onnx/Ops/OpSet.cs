using Onnx;

namespace ResNetSharp.Onnx.Ops;

/// <summary>One compiled node: its inputs (null where an optional input is absent) to its outputs.</summary>
internal delegate Value[] OpFn(Value?[] inputs);

/// <summary>
/// The operators ResNets and their preprocessing use, for the default ONNX domain at opsets 7 to 21, one method per
/// operator. Attributes are read once when the node is compiled; shapes are checked when it runs.
/// </summary>
internal static partial class OpSet
{
    public const int MinOpset = 7, MaxOpset = 21;

    public static readonly IReadOnlySet<string> Supported = new HashSet<string>(StringComparer.Ordinal)
    {
        "Conv", "BatchNormalization", "Relu", "Add", "Sum", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
        "Reshape", "Gemm", "MatMul", "Softmax", "Pad", "Identity", "Constant", "Sub", "Mul", "Div", "Split", "Concat",
        // Beyond the ResNet list: what PyTorch's export of F.pad (CIFAR option-A shortcuts) and dropout produce.
        "Slice", "Dropout", "ConstantOfShape", "Transpose", "Cast",
    };

    /// <summary>Whether the node's operator (and domain) is one this executor runs.</summary>
    public static bool IsSupported(NodeProto node) => node.Domain is "" or "ai.onnx" && Supported.Contains(node.OpType);

    public static OpFn Compile(NodeProto node, int opset, string where)
    {
        var a = new Attrs(node, where);
        return node.OpType switch
        {
            "Conv" => Conv(a),
            "BatchNormalization" => BatchNormalization(a, opset),
            "Relu" => Relu(a),
            "Add" => Binary(a, BinaryOp.Add),
            "Sub" => Binary(a, BinaryOp.Sub),
            "Mul" => Binary(a, BinaryOp.Mul),
            "Div" => Binary(a, BinaryOp.Div),
            "Sum" => Sum(a),
            "MaxPool" => MaxPool(a, opset),
            "AveragePool" => AveragePool(a, opset),
            "GlobalAveragePool" => GlobalAveragePool(a),
            "Flatten" => Flatten(a),
            "Reshape" => Reshape(a, opset),
            "Gemm" => Gemm(a),
            "MatMul" => MatMul(a),
            "Softmax" => Softmax(a, opset),
            "Pad" => Pad(a, opset),
            "Identity" or "Dropout" => Identity(a),
            "Constant" => Constant(a, opset),
            "Split" => Split(a, opset, node.Output.Count),
            "Concat" => Concat(a),
            "Slice" => Slice(a, opset),
            "ConstantOfShape" => ConstantOfShape(a),
            "Transpose" => Transpose(a),
            "Cast" => Cast(a),
            _ => throw new InvalidDataException($"{where}: operator {node.OpType} is not supported"),
        };
    }

    /// <summary>A required input, or an error naming the node and the input.</summary>
    private static Value In(Value?[] inputs, int i, Attrs a, string name) =>
        i < inputs.Length && inputs[i] is { } v ? v : throw new InvalidDataException($"{a.Where}: input {name} is missing");

    /// <summary>Normalises a possibly negative axis into [0, rank).</summary>
    private static int Axis(long axis, int rank, Attrs a)
    {
        long r = axis < 0 ? axis + rank : axis;
        if (r < 0 || r >= Math.Max(rank, 1)) throw new InvalidDataException($"{a.Where}: axis {axis} is out of range for rank {rank}");
        return (int)r;
    }

    private static OpFn Identity(Attrs a) => inputs => [In(inputs, 0, a, "input")];

    private static OpFn Relu(Attrs a) => inputs =>
    {
        var x = In(inputs, 0, a, "X");
        var y = Value.Floats(x.Shape);
        ResNetSharp.Kernels.Elementwise.Relu<float>(x.Float($"{a.Where}: X"), y.F!);
        return [y];
    };

    /// <summary>
    /// BatchNormalization in inference mode: y = (x − mean)/√(var + ε)·scale + B per channel (axis 1), folded into
    /// y = x·s + t and run by ResNetSharp's BN kernel. Opsets 7–8 carry `spatial` (only 1, the per-channel form, is
    /// supported); training outputs (running mean and variance) are not produced.
    /// </summary>
    private static OpFn BatchNormalization(Attrs a, int opset)
    {
        float eps = a.Float("epsilon", 1e-5f);
        if (opset < 9 && a.Int("spatial", 1) != 1)
            throw new InvalidDataException($"{a.Where}: spatial=0 (per-activation statistics) is not supported");
        if (a.Int("training_mode", 0) != 0) throw new InvalidDataException($"{a.Where}: training_mode=1 is not supported");
        return inputs =>
        {
            var x = In(inputs, 0, a, "X");
            if (x.Rank < 2) throw new InvalidDataException($"{a.Where}: X {Value.Str(x.Shape)} needs at least 2 dimensions");
            int n = x.Shape[0], c = x.Shape[1], plane = Value.Count(x.Shape.AsSpan(2));
            var (scale, shift) = FoldNorm(In(inputs, 1, a, "scale"), In(inputs, 2, a, "B"), In(inputs, 3, a, "mean"), In(inputs, 4, a, "var"), eps, c, a);
            var y = Value.Floats(x.Shape);
            ResNetSharp.Kernels.BatchNormKernel.ScaleShift<float>(n, c, plane, x.Float($"{a.Where}: X"), scale, shift, y.F!);
            return [y];
        };
    }

    /// <summary>s = scale/√(var + ε), t = B − mean·s, in double.</summary>
    public static (float[] Scale, float[] Shift) FoldNorm(Value scale, Value bias, Value mean, Value var, float eps, int c, Attrs a)
    {
        foreach (var (v, name) in new[] { (scale, "scale"), (bias, "B"), (mean, "mean"), (var, "var") })
            if (v.Length != c) throw new InvalidDataException($"{a.Where}: {name} {Value.Str(v.Shape)} should have {c} values, one per channel");
        var g = scale.Float(a.Where); var b = bias.Float(a.Where); var mu = mean.Float(a.Where); var vr = var.Float(a.Where);
        var s = new float[c]; var t = new float[c];
        for (int i = 0; i < c; i++)
        {
            double k = g[i] / Math.Sqrt((double)vr[i] + eps);
            s[i] = (float)k;
            t[i] = (float)(b[i] - mu[i] * k);
        }
        return (s, t);
    }

    private static OpFn Constant(Attrs a, int opset)
    {
        Value v;
        if (a.Tensor("value") is { } t) v = OnnxFile.ToValue(t, a.Where);
        else if (a.Has("value_float")) v = new Value([], [a.Float("value_float", 0)]);
        else if (a.Floats("value_floats") is { } fs) v = new Value([fs.Length], fs);
        else if (a.Has("value_int")) v = Value.Scalar(a.Int("value_int", 0));
        else if (a.Ints("value_ints") is { } ls) v = Value.Vector(ls);
        else throw new InvalidDataException($"{a.Where}: Constant needs a value, value_float(s) or value_int(s) attribute (sparse and string values are not supported)");
        return _ => [v];
    }
}
