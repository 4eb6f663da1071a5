namespace ResNetSharp.Onnx.Ops;

internal static partial class OpSet
{
    /// <summary>Flatten to 2-D: (prod(dims before axis), prod(dims from axis)); axis defaults to 1 and may be negative from opset 11.</summary>
    private static OpFn Flatten(Attrs a)
    {
        long axisAttr = a.Int("axis", 1);
        return inputs =>
        {
            var x = In(inputs, 0, a, "input");
            long ax = axisAttr < 0 ? axisAttr + x.Rank : axisAttr;
            if (ax < 0 || ax > x.Rank) throw new InvalidDataException($"{a.Where}: axis {axisAttr} is out of range for rank {x.Rank}");
            return [x.WithShape([Value.Count(x.Shape.AsSpan(0, (int)ax)), Value.Count(x.Shape.AsSpan((int)ax))])];
        };
    }

    /// <summary>
    /// Reshape to the shape given as the second input (opset 5+): 0 copies the input's dimension (unless allowzero,
    /// opset 14+), −1 is inferred from the element count.
    /// </summary>
    private static OpFn Reshape(Attrs a, int opset)
    {
        bool allowZero = opset >= 14 && a.Int("allowzero", 0) != 0;
        return inputs =>
        {
            var x = In(inputs, 0, a, "data");
            var spec = In(inputs, 1, a, "shape").Long($"{a.Where}: shape");
            var shape = new long[spec.Length];
            int infer = -1;
            long known = 1;
            for (int i = 0; i < spec.Length; i++)
            {
                long d = spec[i];
                if (d == 0 && !allowZero)
                {
                    if (i >= x.Rank) throw new InvalidDataException($"{a.Where}: shape entry {i} is 0 but the input has rank {x.Rank}");
                    d = x.Shape[i];
                }
                if (d == -1)
                {
                    if (infer >= 0) throw new InvalidDataException($"{a.Where}: shape ({string.Join(", ", spec)}) has more than one -1");
                    infer = i;
                    continue;
                }
                if (d < 0) throw new InvalidDataException($"{a.Where}: invalid dimension {d} in shape ({string.Join(", ", spec)})");
                shape[i] = d;
                known = known * d;
                if (known > Value.MaxElements) throw new InvalidDataException($"{a.Where}: shape ({string.Join(", ", spec)}) is too large");
            }
            if (infer >= 0)
            {
                if (known == 0 || x.Length % known != 0)
                    throw new InvalidDataException($"{a.Where}: cannot reshape {Value.Str(x.Shape)} to ({string.Join(", ", spec)})");
                shape[infer] = x.Length / known;
            }
            var s = Value.ToShape(shape, a.Where);
            if (Value.Count(s) != x.Length)
                throw new InvalidDataException($"{a.Where}: cannot reshape {Value.Str(x.Shape)} ({x.Length} elements) to {Value.Str(s)}");
            return [x.WithShape(s)];
        };
    }

    /// <summary>
    /// Pad: modes constant, reflect and edge. Before opset 11 the pads and value are attributes; from 11 they are inputs
    /// (pads int64 [begin..., end...], constant_value optional), and from 18 an optional axes input selects the axes
    /// padded. Negative pads crop.
    /// </summary>
    private static OpFn Pad(Attrs a, int opset)
    {
        string mode = a.String("mode", "constant");
        if (mode is not ("constant" or "reflect" or "edge")) throw new InvalidDataException($"{a.Where}: pad mode '{mode}' is not supported");
        long[]? attrPads = opset < 11 ? a.RequiredInts("pads") : null;
        float attrValue = a.Float("value", 0f);
        return inputs =>
        {
            var x = In(inputs, 0, a, "data");
            int rank = x.Rank;
            long[] pads;
            float value = attrValue;
            if (opset < 11) pads = attrPads!;
            else
            {
                var p = In(inputs, 1, a, "pads").Long($"{a.Where}: pads");
                if (inputs.Length > 2 && inputs[2] is { } cv)
                {
                    if (cv.Length != 1) throw new InvalidDataException($"{a.Where}: constant_value must be a scalar");
                    value = cv.IsFloat ? cv.F![0] : cv.L![0];
                }
                if (inputs.Length > 3 && inputs[3] is { } axesValue)
                {
                    var axes = axesValue.Long($"{a.Where}: axes");
                    if (p.Length != 2 * axes.Length) throw new InvalidDataException($"{a.Where}: {p.Length} pads for {axes.Length} axes");
                    pads = new long[2 * rank];
                    for (int i = 0; i < axes.Length; i++)
                    {
                        int ax = Axis(axes[i], rank, a);
                        pads[ax] = p[i]; pads[ax + rank] = p[i + axes.Length];
                    }
                }
                else pads = p;
            }
            if (pads.Length != 2 * rank) throw new InvalidDataException($"{a.Where}: {pads.Length} pads for an input of rank {rank}; expected {2 * rank}");
            var outShape = new long[rank];
            for (int i = 0; i < rank; i++) outShape[i] = x.Shape[i] + pads[i] + pads[i + rank];
            var shape = Value.ToShape(outShape, a.Where);
            if (mode != "constant")
                for (int i = 0; i < rank; i++)
                    if ((pads[i] > 0 || pads[i + rank] > 0) && (x.Shape[i] == 0 || (mode == "reflect" && (pads[i] >= x.Shape[i] || pads[i + rank] >= x.Shape[i]))))
                        throw new InvalidDataException($"{a.Where}: {mode} padding of {pads[i]}+{pads[i + rank]} on an axis of size {x.Shape[i]}");
            var src = x.Float($"{a.Where}: data");
            var y = Value.Floats(shape); var dst = y.F!;
            if (dst.Length == 0) return [y];
            var inStrides = Strides(x.Shape);
            var idx = new int[rank];
            for (int o = 0; o < dst.Length; o++)
            {
                long off = 0; bool inside = true;
                for (int d = 0; d < rank && inside; d++)
                {
                    long i = idx[d] - pads[d];
                    int size = x.Shape[d];
                    if (i < 0 || i >= size)
                    {
                        if (mode == "constant") { inside = false; break; }
                        i = mode == "edge" ? Math.Clamp(i, 0, size - 1) : i < 0 ? -i : 2 * (size - 1) - i;
                    }
                    off += i * inStrides[d];
                }
                dst[o] = inside ? src[off] : value;
                for (int d = rank - 1; d >= 0; d--)
                {
                    if (++idx[d] < shape[d]) break;
                    idx[d] = 0;
                }
            }
            return [y];
        };
    }

    private static long[] Strides(int[] shape)
    {
        var s = new long[shape.Length];
        long stride = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = stride; stride *= shape[i]; }
        return s;
    }

    /// <summary>Concat along an axis (negative from opset 11); float or int64 inputs, all of one type.</summary>
    private static OpFn Concat(Attrs a)
    {
        if (!a.Has("axis")) throw new InvalidDataException($"{a.Where}: attribute 'axis' is required");
        long axisAttr = a.Int("axis", 0);
        return inputs =>
        {
            if (inputs.Length == 0 || inputs.Any(v => v is null)) throw new InvalidDataException($"{a.Where}: Concat needs its inputs");
            var first = inputs[0]!;
            int rank = first.Rank, axis = Axis(axisAttr, rank, a);
            var shape = first.Shape.ToArray();
            shape[axis] = 0;
            foreach (var v in inputs)
            {
                if (v!.Rank != rank || v.IsFloat != first.IsFloat)
                    throw new InvalidDataException($"{a.Where}: cannot concatenate {first} and {v}");
                for (int d = 0; d < rank; d++)
                    if (d != axis && v.Shape[d] != first.Shape[d])
                        throw new InvalidDataException($"{a.Where}: cannot concatenate {first} and {v} along axis {axis}");
                shape[axis] = checked(shape[axis] + v.Shape[axis]);
            }
            int outer = Value.Count(shape.AsSpan(0, axis)), inner = Value.Count(shape.AsSpan(axis + 1));
            var y = first.IsFloat ? Value.Floats(shape) : Value.Longs(shape);
            int offset = 0;
            foreach (var v in inputs)
            {
                int chunk = v!.Shape[axis] * inner;
                for (int o = 0; o < outer; o++)
                {
                    int dst = o * shape[axis] * inner + offset;
                    if (first.IsFloat) Array.Copy(v.F!, o * chunk, y.F!, dst, chunk);
                    else Array.Copy(v.L!, o * chunk, y.L!, dst, chunk);
                }
                offset += chunk;
            }
            return [y];
        };
    }

    /// <summary>
    /// Split along an axis into the node's outputs: sizes from the `split` attribute (before opset 13) or input (13+),
    /// else equal parts (from opset 18 `num_outputs`, the last part may be smaller).
    /// </summary>
    private static OpFn Split(Attrs a, int opset, int outputs)
    {
        long axisAttr = a.Int("axis", 0);
        long[]? attrSplit = opset < 13 ? a.Ints("split") : null;
        long numOutputs = a.Int("num_outputs", outputs);
        return inputs =>
        {
            var x = In(inputs, 0, a, "input");
            int axis = Axis(axisAttr, x.Rank, a), len = x.Shape[axis];
            long[]? split = opset < 13 ? attrSplit : inputs.Length > 1 && inputs[1] is { } s ? s.Long($"{a.Where}: split") : null;
            if (split is null)
            {
                if (numOutputs <= 0) throw new InvalidDataException($"{a.Where}: no outputs to split into");
                long part = opset >= 18 ? (len + numOutputs - 1) / numOutputs : len / numOutputs;
                if (opset < 18 && len % numOutputs != 0)
                    throw new InvalidDataException($"{a.Where}: axis {axis} of size {len} does not split evenly into {numOutputs}");
                split = Enumerable.Range(0, (int)numOutputs).Select(i => Math.Max(0, Math.Min(part, len - i * part))).ToArray();
            }
            if (split.Length != outputs || split.Any(v => v < 0) || split.Sum() != len)
                throw new InvalidDataException($"{a.Where}: split ({string.Join(", ", split)}) does not divide axis {axis} of size {len} into {outputs} outputs");
            int outer = Value.Count(x.Shape.AsSpan(0, axis)), inner = Value.Count(x.Shape.AsSpan(axis + 1));
            var result = new Value[outputs];
            int offset = 0;
            for (int k = 0; k < outputs; k++)
            {
                var shape = x.Shape.ToArray(); shape[axis] = (int)split[k];
                var y = x.IsFloat ? Value.Floats(shape) : Value.Longs(shape);
                int chunk = shape[axis] * inner;
                for (int o = 0; o < outer; o++)
                {
                    int src = o * len * inner + offset;
                    if (x.IsFloat) Array.Copy(x.F!, src, y.F!, o * chunk, chunk);
                    else Array.Copy(x.L!, src, y.L!, o * chunk, chunk);
                }
                offset += chunk;
                result[k] = y;
            }
            return result;
        };
    }

    /// <summary>
    /// Slice: starts, ends, axes as attributes before opset 10, as inputs (with steps) from 10. Indices clamp as in
    /// NumPy; negative steps walk backwards.
    /// </summary>
    private static OpFn Slice(Attrs a, int opset)
    {
        long[]? attrStarts = opset < 10 ? a.RequiredInts("starts") : null, attrEnds = opset < 10 ? a.RequiredInts("ends") : null;
        long[]? attrAxes = opset < 10 ? a.Ints("axes") : null;
        return inputs =>
        {
            var x = In(inputs, 0, a, "data");
            long[] starts, ends, axes, steps;
            if (opset < 10) { starts = attrStarts!; ends = attrEnds!; axes = attrAxes ?? Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray(); steps = Enumerable.Repeat(1L, starts.Length).ToArray(); }
            else
            {
                starts = In(inputs, 1, a, "starts").Long(a.Where); ends = In(inputs, 2, a, "ends").Long(a.Where);
                axes = inputs.Length > 3 && inputs[3] is { } av ? av.Long(a.Where) : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
                steps = inputs.Length > 4 && inputs[4] is { } sv ? sv.Long(a.Where) : Enumerable.Repeat(1L, starts.Length).ToArray();
            }
            if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
                throw new InvalidDataException($"{a.Where}: starts, ends, axes and steps differ in length");
            int rank = x.Rank;
            var begin = new long[rank]; var step = new long[rank]; var shape = x.Shape.ToArray();
            for (int d = 0; d < rank; d++) step[d] = 1;
            for (int i = 0; i < starts.Length; i++)
            {
                int d = Axis(axes[i], rank, a);
                long size = x.Shape[d], st = steps[i];
                if (st == 0) throw new InvalidDataException($"{a.Where}: step 0");
                long s = starts[i] < 0 ? starts[i] + size : starts[i], e = ends[i] < 0 ? ends[i] + size : ends[i];
                if (st > 0) { s = Math.Clamp(s, 0, size); e = Math.Clamp(e, 0, size); }
                else { s = Math.Clamp(s, -1, size - 1); e = Math.Clamp(e, -1, size - 1); }
                long count = st > 0 ? Math.Max(0, (e - s + st - 1) / st) : Math.Max(0, (s - e + (-st) - 1) / (-st));
                begin[d] = s; step[d] = st; shape[d] = (int)count;
            }
            var strides = Strides(x.Shape);
            var y = x.IsFloat ? Value.Floats(shape) : Value.Longs(shape);
            var idx = new int[rank];
            for (int o = 0; o < y.Length; o++)
            {
                long off = 0;
                for (int d = 0; d < rank; d++) off += (begin[d] + idx[d] * step[d]) * strides[d];
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
}
