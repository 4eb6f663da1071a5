using Onnx;

namespace ResNetSharp.Onnx.Ops;

internal static partial class OpSet
{
    /// <summary>
    /// ConstantOfShape: a tensor of the shape given as input, filled with the one-element `value` (float 0 by default).
    /// PyTorch's F.pad export at opset 11+ builds its pads with it.
    /// </summary>
    private static OpFn ConstantOfShape(Attrs a)
    {
        var t = a.Tensor("value");
        var fill = t is null ? new Value([1], [0f]) : OnnxFile.ToValue(t, a.Where);
        if (fill.Length != 1) throw new InvalidDataException($"{a.Where}: value must have one element");
        return inputs =>
        {
            var shape = Value.ToShape(In(inputs, 0, a, "input").Long(a.Where), a.Where);
            if (fill.IsFloat) { var v = Value.Floats(shape); Array.Fill(v.F!, fill.F![0]); return [v]; }
            var l = Value.Longs(shape); Array.Fill(l.L!, fill.L![0]); return [l];
        };
    }

    /// <summary>Transpose by `perm` (default: reverse the axes).</summary>
    private static OpFn Transpose(Attrs a)
    {
        var perm = a.Ints("perm");
        return inputs =>
        {
            var x = In(inputs, 0, a, "data");
            int rank = x.Rank;
            var p = perm?.Select(v => (int)v).ToArray() ?? Enumerable.Range(0, rank).Reverse().ToArray();
            if (p.Length != rank || p.Distinct().Count() != rank || p.Any(v => v < 0 || v >= rank))
                throw new InvalidDataException($"{a.Where}: perm ({string.Join(", ", p)}) is not a permutation of {rank} axes");
            var shape = p.Select(d => x.Shape[d]).ToArray();
            var inStrides = Strides(x.Shape);
            var y = x.IsFloat ? Value.Floats(shape) : Value.Longs(shape);
            var idx = new int[rank];
            for (int o = 0; o < y.Length; o++)
            {
                long off = 0;
                for (int d = 0; d < rank; d++) off += idx[d] * inStrides[p[d]];
                if (x.IsFloat) y.F![o] = x.F![off]; else y.L![o] = x.L![off];
                for (int d = rank - 1; d >= 0; d--)
                {
                    if (++idx[d] < shape[d]) break;
                    idx[d] = 0;
                }
            }
            return [y];
        };
    }

    /// <summary>Cast between the types this importer holds: float types to float32, integer and bool types to int64.</summary>
    private static OpFn Cast(Attrs a)
    {
        var to = (TensorProto.Types.DataType)a.Int("to", 0);
        bool toFloat = to switch
        {
            TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Float16 => true,
            TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Int16
                or TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => false,
            _ => throw new InvalidDataException($"{a.Where}: Cast to {to} is not supported"),
        };
        return inputs =>
        {
            var x = In(inputs, 0, a, "input");
            if (x.IsFloat == toFloat) return [x];
            if (toFloat) return [new Value(x.Shape, x.L!.Select(v => (float)v).ToArray())];
            return [new Value(x.Shape, x.F!.Select(v => to == TensorProto.Types.DataType.Bool ? (v != 0 ? 1L : 0L) : (long)v).ToArray())];
        };
    }
}
