using ResNetSharp.Kernels;

namespace ResNetSharp.Onnx.Ops;

/// <summary>One spatial axis of a convolution or pooling window: size, stride, dilation, padding and output length.</summary>
internal readonly record struct Axis(int Kernel, int Stride, int Dilation, int PadBegin, int PadEnd, int Out)
{
    public int Extent => (Kernel - 1) * Dilation + 1;
}

/// <summary>Window geometry shared by Conv, MaxPool and AveragePool: kernel_shape, strides, dilations, pads, auto_pad, ceil_mode.</summary>
internal sealed class WindowSpec
{
    public WindowSpec(Attrs a, int[]? kernel, bool allowCeil)
    {
        Where = a.Where;
        Kernel = kernel;
        AutoPad = a.String("auto_pad", "NOTSET");
        if (AutoPad is not ("NOTSET" or "SAME_UPPER" or "SAME_LOWER" or "VALID"))
            throw new InvalidDataException($"{Where}: auto_pad '{AutoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
        Strides = a.Ints("strides");
        Dilations = a.Ints("dilations");
        Pads = a.Ints("pads");
        Ceil = allowCeil && a.Int("ceil_mode", 0) != 0;
        if (Pads is not null && AutoPad != "NOTSET" && Pads.Any(p => p != 0))
            throw new InvalidDataException($"{Where}: pads and auto_pad {AutoPad} cannot both be given");
    }

    public string Where { get; }
    public int[]? Kernel { get; }
    public string AutoPad { get; }
    public long[]? Strides { get; }
    public long[]? Dilations { get; }
    public long[]? Pads { get; }
    public bool Ceil { get; }

    /// <summary>The two spatial axes for an (H, W) input; the kernel comes from the attribute or the weight.</summary>
    public Axis[] Resolve(int h, int w, int kh, int kw)
    {
        int[] size = [h, w], k = [kh, kw];
        if (Strides is { Length: not 2 } || Dilations is { Length: not 2 } || Pads is { Length: not 4 })
            throw new InvalidDataException($"{Where}: only 2-D windows are supported (strides, dilations of 2 values, pads of 4)");
        const long Limit = 1 << 20;  // far beyond any real window; keeps the arithmetic below in range
        foreach (var list in new[] { Strides, Dilations, Pads })
            if (list is not null && list.Any(v => v > Limit || v < -Limit))
                throw new InvalidDataException($"{Where}: strides, dilations and pads must be within ±{Limit}, got ({string.Join(", ", list)})");
        if (kh > Limit || kw > Limit) throw new InvalidDataException($"{Where}: kernel {kh}x{kw} is too large");
        var axes = new Axis[2];
        for (int i = 0; i < 2; i++)
        {
            int s = (int)(Strides?[i] ?? 1), d = (int)(Dilations?[i] ?? 1);
            if (k[i] <= 0 || s <= 0 || d <= 0) throw new InvalidDataException($"{Where}: kernel {k[i]}, stride {s} and dilation {d} must be positive");
            int extent = (k[i] - 1) * d + 1;
            int pb, pe, outLen;
            if (AutoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                outLen = (size[i] + s - 1) / s;
                int total = Math.Max(0, (outLen - 1) * s + extent - size[i]);
                pb = AutoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
                pe = total - pb;
            }
            else
            {
                pb = AutoPad == "VALID" ? 0 : (int)(Pads?[i] ?? 0);
                pe = AutoPad == "VALID" ? 0 : (int)(Pads?[i + 2] ?? 0);
                if (pb < 0 || pe < 0) throw new InvalidDataException($"{Where}: negative pads are not supported");
                long span = (long)size[i] + pb + pe - extent;
                if (span < 0) throw new InvalidDataException($"{Where}: input size {size[i]} with pads {pb}+{pe} is smaller than the window {extent}");
                outLen = (int)(Ceil ? (span + s - 1) / s : span / s) + 1;
                // With ceil_mode, a last window that starts past the input and the leading padding is dropped (PyTorch, ONNX Runtime).
                if (Ceil && (long)(outLen - 1) * s >= size[i] + pb) outLen--;
            }
            axes[i] = new Axis(k[i], s, d, pb, pe, outLen);
        }
        return axes;
    }
}

internal static partial class OpSet
{
    /// <summary>
    /// Conv (2-D): X (N,C,H,W), W (M,C/group,kH,kW), B (M). Ungrouped, undilated square convolutions with equal strides run
    /// on ResNetSharp's packed convolution kernel (after an explicit copy with padding when the pads are unequal);
    /// the rest as im2col and our GEMM per group.
    /// </summary>
    private static OpFn Conv(Attrs a)
    {
        var spec = new WindowSpec(a, a.Ints("kernel_shape")?.Select(v => (int)v).ToArray(), allowCeil: false);
        int group = (int)a.Int("group", 1);
        if (group <= 0) throw new InvalidDataException($"{a.Where}: group {group} must be positive");
        return inputs =>
        {
            var x = In(inputs, 0, a, "X"); var w = In(inputs, 1, a, "W"); var b = inputs.Length > 2 ? inputs[2] : null;
            if (x.Rank != 4 || w.Rank != 4)
                throw new InvalidDataException($"{a.Where}: only 2-D convolution is supported, got X {Value.Str(x.Shape)} and W {Value.Str(w.Shape)}");
            int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3];
            int m = w.Shape[0], cg = w.Shape[1], kh = w.Shape[2], kw = w.Shape[3];
            if (spec.Kernel is { } ks && (ks.Length != 2 || ks[0] != kh || ks[1] != kw))
                throw new InvalidDataException($"{a.Where}: kernel_shape ({string.Join(", ", ks)}) does not match W {Value.Str(w.Shape)}");
            if (cg * group != c || m % group != 0)
                throw new InvalidDataException($"{a.Where}: X has {c} channels, W {Value.Str(w.Shape)} with group {group} expects {cg * group} (and M divisible by group)");
            if (b is not null && (b.Rank != 1 || b.Shape[0] != m))
                throw new InvalidDataException($"{a.Where}: B {Value.Str(b.Shape)} should be ({m})");
            var ax = spec.Resolve(h, wd, kh, kw);
            var xs = x.Float($"{a.Where}: X"); var ws = w.Float($"{a.Where}: W"); var bs = b?.Float($"{a.Where}: B");
            var y = Value.Floats([n, m, ax[0].Out, ax[1].Out]);
            bool plain = group == 1 && kh == kw && ax[0].Dilation == 1 && ax[1].Dilation == 1 && ax[0].Stride == ax[1].Stride;
            if (plain)
            {
                int p = ax[0].PadBegin;
                bool equalPads = ax[0].PadEnd == p && ax[1].PadBegin == p && ax[1].PadEnd == p;
                var src = xs; int hh = h, ww = wd;
                // Unequal padding (SAME_UPPER, CNTK's pads): copy into a zero-padded image, then convolve without padding.
                // The output size already accounts for floor division, so the padded copy is exactly what the window reads.
                if (!equalPads)
                {
                    hh = h + ax[0].PadBegin + ax[0].PadEnd; ww = wd + ax[1].PadBegin + ax[1].PadEnd;
                    src = PadImage(xs, n * c, h, wd, ax[0].PadBegin, ax[1].PadBegin, hh, ww);
                    p = 0;
                }
                var g = new ConvGeometry(c, hh, ww, m, kh, kw, ax[0].Stride, p);
                if (g.OutHeight != ax[0].Out || g.OutWidth != ax[1].Out)
                    throw new InvalidOperationException($"{a.Where}: geometry mismatch ({g.OutHeight}x{g.OutWidth} vs {ax[0].Out}x{ax[1].Out})");
                var scratch = new float[Conv2dKernel.ScratchSize<float>(g)];
                Conv2dKernel.Forward<float>(g, n, src, ws, bs is null ? ReadOnlySpan<float>.Empty : bs, y.F!, scratch);
                return [y];
            }
            GroupedConv(xs, ws, bs, y.F!, n, c, h, wd, m, group, ax);
            return [y];
        };
    }

    private static float[] PadImage(float[] x, int planes, int h, int w, int top, int left, int hh, int ww)
    {
        var dst = new float[checked((long)planes * hh * ww) <= Value.MaxElements ? planes * hh * ww : throw new InvalidDataException("padded image too large")];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < h; i++)
                x.AsSpan((p * h + i) * w, w).CopyTo(dst.AsSpan((p * hh + i + top) * ww + left, w));
        return dst;
    }

    /// <summary>General convolution: per image and group, col (Cg·kH·kW, OH·OW) by im2col with strides, dilations and pads, then Y_g = W_g · col.</summary>
    private static void GroupedConv(float[] x, float[] w, float[]? b, float[] y, int n, int c, int h, int wd, int m, int group, Axis[] ax)
    {
        int cg = c / group, mg = m / group, kh = ax[0].Kernel, kw = ax[1].Kernel, oh = ax[0].Out, ow = ax[1].Out;
        int k = cg * kh * kw, p = oh * ow;
        var col = new float[(long)k * p <= Value.MaxElements ? k * p : throw new InvalidDataException("convolution patch matrix too large")];
        for (int img = 0; img < n; img++)
            for (int gi = 0; gi < group; gi++)
            {
                for (int ci = 0; ci < cg; ci++)
                {
                    var plane = x.AsSpan(((img * c) + gi * cg + ci) * h * wd, h * wd);
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                        {
                            var row = col.AsSpan(((ci * kh + ky) * kw + kx) * p, p);
                            for (int oy = 0; oy < oh; oy++)
                            {
                                int iy = oy * ax[0].Stride - ax[0].PadBegin + ky * ax[0].Dilation;
                                for (int ox = 0; ox < ow; ox++)
                                {
                                    int ix = ox * ax[1].Stride - ax[1].PadBegin + kx * ax[1].Dilation;
                                    row[oy * ow + ox] = (uint)iy < (uint)h && (uint)ix < (uint)wd ? plane[iy * wd + ix] : 0f;
                                }
                            }
                        }
                }
                var yg = y.AsSpan((img * m + gi * mg) * p, mg * p);
                ResNetSharp.Kernels.Gemm.NN<float>(mg, p, k, w.AsSpan(gi * mg * k, mg * k), k, col, p, yg, p, accumulate: false);
                if (b is not null)
                    for (int oc = 0; oc < mg; oc++)
                    {
                        float bias = b[gi * mg + oc];
                        foreach (ref float v in yg.Slice(oc * p, p)) v += bias;
                    }
            }
    }
}
