namespace ResNetSharp.Onnx.Ops;

internal static partial class OpSet
{
    /// <summary>
    /// Gemm: Y = alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A (M,K), B' = transB ? Bᵀ : B (K,N), C broadcast to (M,N)
    /// (required before opset 11). Runs on ResNetSharp's GEMM kernels.
    /// </summary>
    private static OpFn Gemm(Attrs a)
    {
        float alpha = a.Float("alpha", 1f), beta = a.Float("beta", 1f);
        bool ta = a.Int("transA", 0) != 0, tb = a.Int("transB", 0) != 0;
        return inputs =>
        {
            var av = In(inputs, 0, a, "A"); var bv = In(inputs, 1, a, "B");
            if (av.Rank != 2 || bv.Rank != 2) throw new InvalidDataException($"{a.Where}: A {Value.Str(av.Shape)} and B {Value.Str(bv.Shape)} must be 2-D");
            int m = ta ? av.Shape[1] : av.Shape[0], k = ta ? av.Shape[0] : av.Shape[1];
            int kb = tb ? bv.Shape[1] : bv.Shape[0], n = tb ? bv.Shape[0] : bv.Shape[1];
            if (k != kb) throw new InvalidDataException($"{a.Where}: A {Value.Str(av.Shape)} and B {Value.Str(bv.Shape)} do not multiply (transA={(ta ? 1 : 0)}, transB={(tb ? 1 : 0)})");
            var A = av.Float(a.Where); var B = bv.Float(a.Where);
            if (ta) { A = Transpose(A, av.Shape[0], av.Shape[1]); }
            var y = Value.Floats([m, n]); var ys = y.F!;
            if (tb) ResNetSharp.Kernels.Gemm.NT<float>(m, n, k, A, k, B, k, ys, n, accumulate: false);
            else ResNetSharp.Kernels.Gemm.NN<float>(m, n, k, A, k, B, n, ys, n, accumulate: false);
            if (alpha != 1f) for (int i = 0; i < ys.Length; i++) ys[i] *= alpha;
            if (inputs.Length > 2 && inputs[2] is { } cv && beta != 0f)
            {
                if (!BroadcastShape(cv.Shape, [m, n], a).AsSpan().SequenceEqual([m, n]))
                    throw new InvalidDataException($"{a.Where}: C {Value.Str(cv.Shape)} does not broadcast to ({m}, {n})");
                var c = Broadcast(new Value([m, n], new float[m * n]), cv, BinaryOp.Add, a).F!;
                for (int i = 0; i < ys.Length; i++) ys[i] += beta * c[i];
            }
            return [y];
        };
    }

    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
        return t;
    }

    /// <summary>MatMul with NumPy semantics: 1-D operands are promoted and the promoted axis removed, batch axes broadcast.</summary>
    private static OpFn MatMul(Attrs a) => inputs =>
    {
        var av = In(inputs, 0, a, "A"); var bv = In(inputs, 1, a, "B");
        if (av.Rank == 0 || bv.Rank == 0) throw new InvalidDataException($"{a.Where}: MatMul operands must have at least one dimension");
        int[] sa = av.Rank == 1 ? [1, av.Shape[0]] : av.Shape, sb = bv.Rank == 1 ? [bv.Shape[0], 1] : bv.Shape;
        int m = sa[^2], k = sa[^1], n = sb[^1];
        if (sb[^2] != k) throw new InvalidDataException($"{a.Where}: A {Value.Str(av.Shape)} and B {Value.Str(bv.Shape)} do not multiply");
        var batch = BroadcastShape(sa[..^2], sb[..^2], a);
        var outShape = batch.Concat(new[] { m, n }).ToArray();
        var y = Value.Floats(outShape);
        var A = av.Float(a.Where); var B = bv.Float(a.Where);
        int batches = Value.Count(batch);
        var strideA = BroadcastStrides(sa[..^2], batch); var strideB = BroadcastStrides(sb[..^2], batch);
        var idx = new int[batch.Length];
        for (int bi = 0; bi < batches; bi++)
        {
            long oa = 0, ob = 0;
            for (int d = 0; d < batch.Length; d++) { oa += idx[d] * strideA[d]; ob += idx[d] * strideB[d]; }
            ResNetSharp.Kernels.Gemm.NN<float>(m, n, k, A.AsSpan((int)(oa * m * k), m * k), k, B.AsSpan((int)(ob * k * n), k * n), n,
                y.F.AsSpan(bi * m * n, m * n), n, accumulate: false);
            for (int d = batch.Length - 1; d >= 0; d--)
            {
                if (++idx[d] < batch[d]) break;
                idx[d] = 0;
            }
        }
        var finalShape = outShape.ToList();
        if (bv.Rank == 1) finalShape.RemoveAt(finalShape.Count - 1);
        if (av.Rank == 1) finalShape.RemoveAt(finalShape.Count - (bv.Rank == 1 ? 1 : 2));
        return [y.WithShape(finalShape.ToArray())];
    };
}
