using ResNetSharp.Kernels;

namespace ResNetSharp.Onnx.Ops;

internal static partial class OpSet
{
    /// <summary>
    /// MaxPool (2-D), padding counting as −∞. Square windows with equal strides and pads, no dilation and floor rounding
    /// (ResNet's 3x3/2 pad 1) run on ResNetSharp's pooling kernel; the rest on the general loop below. ceil_mode and
    /// dilations exist from opset 10; the Indices output is not produced.
    /// </summary>
    private static OpFn MaxPool(Attrs a, int opset)
    {
        var k = a.RequiredInts("kernel_shape").Select(v => (int)v).ToArray();
        if (k.Length != 2) throw new InvalidDataException($"{a.Where}: only 2-D pooling is supported, kernel_shape has {k.Length} values");
        if (a.Int("storage_order", 0) != 0) throw new InvalidDataException($"{a.Where}: storage_order 1 is not supported");
        var spec = new WindowSpec(a, k, allowCeil: opset >= 10);
        return inputs =>
        {
            var x = In(inputs, 0, a, "X");
            var (n, c, h, w) = Nchw(x, a);
            var ax = spec.Resolve(h, w, k[0], k[1]);
            var y = Value.Floats([n, c, ax[0].Out, ax[1].Out]);
            var xs = x.Float(a.Where);
            bool kernelFits = k[0] == k[1] && ax[0].Stride == ax[1].Stride && ax[0].Dilation == 1 && ax[1].Dilation == 1
                && ax[0].PadBegin == ax[0].PadEnd && ax[1].PadBegin == ax[0].PadBegin && ax[1].PadEnd == ax[0].PadBegin
                && ax[0].PadBegin < k[0] && !spec.Ceil;
            if (kernelFits)
            {
                var argmax = new int[y.Length];
                PoolKernels.MaxPoolForward<float>(n * c, h, w, k[0], ax[0].Stride, ax[0].PadBegin, xs, y.F!, argmax);
                return [y];
            }
            Pool(xs, y.F!, n * c, h, w, ax, average: false, countPad: false);
            return [y];
        };
    }

    /// <summary>AveragePool (2-D). count_include_pad (default 0) decides whether padded positions count in the divisor.</summary>
    private static OpFn AveragePool(Attrs a, int opset)
    {
        var k = a.RequiredInts("kernel_shape").Select(v => (int)v).ToArray();
        if (k.Length != 2) throw new InvalidDataException($"{a.Where}: only 2-D pooling is supported, kernel_shape has {k.Length} values");
        var spec = new WindowSpec(a, k, allowCeil: opset >= 10);
        bool countPad = a.Int("count_include_pad", 0) != 0;
        return inputs =>
        {
            var x = In(inputs, 0, a, "X");
            var (n, c, h, w) = Nchw(x, a);
            var ax = spec.Resolve(h, w, k[0], k[1]);
            var y = Value.Floats([n, c, ax[0].Out, ax[1].Out]);
            Pool(x.Float(a.Where), y.F!, n * c, h, w, ax, average: true, countPad);
            return [y];
        };
    }

    private static OpFn GlobalAveragePool(Attrs a) => inputs =>
    {
        var x = In(inputs, 0, a, "X");
        if (x.Rank < 3) throw new InvalidDataException($"{a.Where}: X {Value.Str(x.Shape)} needs spatial dimensions");
        int planes = x.Shape[0] * x.Shape[1], plane = Value.Count(x.Shape.AsSpan(2));
        var shape = x.Shape.ToArray();
        for (int i = 2; i < shape.Length; i++) shape[i] = 1;
        var y = Value.Floats(shape);
        PoolKernels.GlobalAverageForward<float>(planes, plane, x.Float(a.Where), y.F!);
        return [y];
    };

    private static (int N, int C, int H, int W) Nchw(Value x, Attrs a) =>
        x.Rank == 4 ? (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3])
            : throw new InvalidDataException($"{a.Where}: only 2-D (N, C, H, W) input is supported, got {Value.Str(x.Shape)}");

    /// <summary>
    /// The general window loop. Max: padding is −∞ (a window of only padding gives −∞). Average: the divisor counts the
    /// positions inside the input, or with count_include_pad every position inside the padded input (positions that
    /// ceil_mode adds beyond the padding never count), as PyTorch and ONNX Runtime do.
    /// </summary>
    private static void Pool(float[] x, float[] y, int planes, int h, int w, Axis[] ax, bool average, bool countPad)
    {
        int oh = ax[0].Out, ow = ax[1].Out;
        for (int p = 0; p < planes; p++)
        {
            var src = x.AsSpan(p * h * w, h * w);
            var dst = y.AsSpan(p * oh * ow, oh * ow);
            for (int oy = 0; oy < oh; oy++)
            {
                int y0 = oy * ax[0].Stride - ax[0].PadBegin;
                for (int ox = 0; ox < ow; ox++)
                {
                    int x0 = ox * ax[1].Stride - ax[1].PadBegin;
                    float best = float.NegativeInfinity; double sum = 0; int count = 0, padded = 0;
                    for (int ky = 0; ky < ax[0].Kernel; ky++)
                    {
                        int iy = y0 + ky * ax[0].Dilation;
                        bool rowInPad = iy >= -ax[0].PadBegin && iy < h + ax[0].PadEnd;
                        for (int kx = 0; kx < ax[1].Kernel; kx++)
                        {
                            int ix = x0 + kx * ax[1].Dilation;
                            if (rowInPad && ix >= -ax[1].PadBegin && ix < w + ax[1].PadEnd) padded++;
                            if ((uint)iy >= (uint)h || (uint)ix >= (uint)w) continue;
                            float v = src[iy * w + ix];
                            count++;
                            if (average) sum += v;
                            else if (v > best || float.IsNaN(v)) best = v;
                        }
                    }
                    dst[oy * ow + ox] = average ? (float)(sum / Math.Max(1, countPad ? padded : count)) : best;
                }
            }
        }
    }
}
