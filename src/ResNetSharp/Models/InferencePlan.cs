using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Models;

/// <summary>
/// The evaluation-mode fast path of a float ResNet, compiled for one input shape: activations in NHWC, every BN folded
/// into its convolution's weights and bias, ReLU and the residual add fused into the convolution's epilogue, weights
/// packed once, and activations in a few buffers reused by liveness instead of one per layer.
/// </summary>
public sealed unsafe class InferencePlan
{
    private abstract record Step { public string Name { get; init; } = ""; public long Macs { get; init; } }
    private sealed record ConvStep(ConvGeometry Geometry, PackedWeights Weights, int[] Offsets, int Input, int Output, int Residual, bool Relu) : Step;
    // Chunked: planned to run in per-thread chunks of tiles (Winograd.TakesChunks), so it gets no shared scratch.
    private sealed record WinogradStep(ConvGeometry Geometry, PackedWeights[] Weights, AlignedBuffer Bias, int[] RowOffsets, int Input, int Output, int Residual,
        bool Relu, bool Chunked) : Step;
    // A conv (+BN, ReLU) and the 3x3/2 max pool after it, in bands of pooled rows (NhwcConv.ForwardMaxPooled); Conv
    // and ConvOutput: the two steps it stands for, for when FuseConvMaxPool is off.
    private sealed record ConvMaxPoolStep(ConvStep Conv, int ConvOutput, int Bands, int[][] BandOffsets, int Output, int H, int W, int C) : Step;
    private sealed record PadStep(int Input, int Output, int H, int W, int C, int Padding) : Step;
    private sealed record MaxPoolStep(int Input, int Output, int H, int W, int C, int Kernel, int Stride, int Padding) : Step;
    private sealed record ZeroPadStep(int Input, int Output, int H, int W, int InC, int OutC, int Stride) : Step;
    private sealed record AveragePoolStep(int Input, int Pixels, int C) : Step;

    /// <summary>Time of one step of the last profiled run.</summary>
    public sealed record StepTime(string Name, long Macs, double Milliseconds);

    /// <summary>When set, <see cref="Run"/> records the time of each step here (the layer-by-layer profile).</summary>
    public List<StepTime>? Profile { get; set; }

    private readonly List<Step> _steps = [];
    private readonly List<int> _slotSizes = [];
    private readonly Stack<int> _free = new();
    private AlignedBuffer[] _slots = [];
    private readonly int _batch, _inputSlot;
    private readonly PadStep? _paddedInput;   // the first step's padding, done by the input conversion
    private readonly Tensor<float> _features, _logits;
    private readonly PackedWeights _fc;
    private readonly int[] _fcOffsets;
    private readonly bool _winograd;
    private const int MinWinograd4Tiles = 32, MinWinograd2Tiles = 32;
    private int _winogradInSize, _winogradOutSize;
    private AlignedBuffer? _winogradIn, _winogradOut;

    internal InferencePlan(ResNet<float> model, int[] inputShape, bool winograd)
    {
        InputShape = inputShape;
        _winograd = winograd;
        var outShape = model.OutputShape(inputShape);  // validates, naming the layer that cannot take the input
        _batch = inputShape[0];
        int c = inputShape[1], h = inputShape[2], w = inputShape[3];
        _inputSlot = Acquire(_batch * c * h * w);
        int current = _inputSlot;
        var children = model.Children.ToList();
        for (int i = 0; i < children.Count; i++)
        {
            var (name, m) = children[i];
            switch (m)
            {
                case Conv2d<float> conv:
                    var bn = children[i + 1].Module as BatchNorm2d<float> ?? throw new NotSupportedException($"{conv.Label} is not followed by BatchNorm2d");
                    bool relu = i + 2 < children.Count && children[i + 2].Module is ReLU<float>;
                    current = Conv(conv, bn, current, ref h, ref w, ref c, residual: -1, relu, releaseInput: true);
                    i += relu ? 2 : 1;
                    break;
                case MaxPool2d<float> pool:
                    int oh = (h + 2 * pool.Padding - pool.KernelSize) / pool.Stride + 1, ow = (w + 2 * pool.Padding - pool.KernelSize) / pool.Stride + 1;
                    int pooled = Acquire(_batch * oh * ow * c);
                    if (_steps.Count > 0 && _steps[^1] is ConvStep { Relu: true, Residual: < 0 } stem && stem.Output == current
                        && pool.KernelSize == 3 && pool.Stride == 2 && pool.Padding == 1)
                    {
                        // Run together, the pool writes while the conv reads its input: never into the same buffer.
                        if (pooled == stem.Input)
                        {
                            int other = Acquire(_batch * oh * ow * c);
                            Release(pooled);
                            pooled = other;
                        }
                        _steps[^1] = ConvMaxPool(stem, current, pooled, h, w, c, oh);
                    }
                    else _steps.Add(new MaxPoolStep(current, pooled, h, w, c, pool.KernelSize, pool.Stride, pool.Padding) { Name = pool.Label });
                    Release(current); current = pooled; h = oh; w = ow;
                    break;
                case Sequential<float> stage:
                    foreach (var (_, block) in stage.Children) current = Block((ResidualBlock<float>)block, current, ref h, ref w, ref c);
                    break;
                case AdaptiveAvgPool2d<float>:
                    _steps.Add(new AveragePoolStep(current, h * w, c) { Name = m.Label });
                    break;
                case Flatten<float>:
                    break;
                case Linear<float> fc when name == "fc":
                    break;
                default:
                    throw new NotSupportedException($"the fused inference path does not handle {m.Label}");
            }
        }
        _features = new Tensor<float>(_batch, c);
        var fcLayer = model.Fc;
        _fc = PackedWeights.FromOihw(fcLayer.Weight.Value.Span, fcLayer.OutFeatures, fcLayer.InFeatures, 1, default,
            fcLayer.Bias is null ? default : fcLayer.Bias.Value.Span);
        _fcOffsets = Enumerable.Range(0, _batch).Select(n => n * c).ToArray();
        _logits = new Tensor<float>(outShape);
        // A stem that starts by padding the input converts it to NHWC straight into the padded buffer.
        if (_steps.Count > 0 && _steps[0] is PadStep pad && pad.Input == _inputSlot)
        {
            _paddedInput = pad;
            _steps.RemoveAt(0);
        }
        _slots = _slotSizes.Select(size => new AlignedBuffer(size)).ToArray();
        if (_winogradInSize > 0)
        {
            _winogradIn = new AlignedBuffer(_winogradInSize);
            _winogradOut = new AlignedBuffer(_winogradOutSize);
        }
    }

    public int[] InputShape { get; }

    /// <summary>Runs the plan; returns the logits (N,K), or the pooled features (N,C) when <paramref name="featuresOnly"/>.</summary>
    internal Tensor<float> Run(Tensor<float> x, bool featuresOnly)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_paddedInput is { } pad) NhwcConv.ToNhwcPadded(x.Span, _slots[pad.Output].Span, x.N, x.C, x.H, x.W, pad.Padding);
        else NhwcConv.ToNhwc(x.Span, _slots[_inputSlot].Span, x.N, x.C, x.H, x.W);
        Profile?.Clear();
        Record(_paddedInput is null ? "input to NHWC" : "input to NHWC, zero padded", 0, ref start);
        foreach (var step in _steps)
        {
            switch (step)
            {
                case ConvStep s:
                    NhwcConv.Forward(s.Geometry, _batch, s.Weights, s.Offsets, Ptr(s.Input), Ptr(s.Output),
                        s.Residual < 0 ? null : Ptr(s.Residual), s.Relu);
                    break;
                case WinogradStep s:
                    Winograd.Forward(s.Geometry, _batch, s.Weights, s.Bias.Pointer, s.RowOffsets, Ptr(s.Input), Ptr(s.Output),
                        s.Residual < 0 ? null : Ptr(s.Residual), s.Relu, s.Chunked ? null : _winogradIn!.Pointer, s.Chunked ? null : _winogradOut!.Pointer);
                    break;
                case ConvMaxPoolStep s when FuseConvMaxPool:
                    NhwcConv.ForwardMaxPooled(s.Conv.Geometry, _batch, s.Conv.Weights, s.Bands, s.BandOffsets, Ptr(s.Conv.Input), Ptr(s.Output));
                    break;
                case ConvMaxPoolStep s:
                    NhwcConv.Forward(s.Conv.Geometry, _batch, s.Conv.Weights, s.Conv.Offsets, Ptr(s.Conv.Input), Ptr(s.ConvOutput), null, relu: true);
                    NhwcOps.MaxPool(Ptr(s.ConvOutput), Ptr(s.Output), _batch, s.H, s.W, s.C, 3, 2, 1);
                    break;
                case PadStep s:
                    NhwcOps.Pad(Ptr(s.Input), Ptr(s.Output), _batch, s.H, s.W, s.C, s.Padding);
                    break;
                case MaxPoolStep s:
                    NhwcOps.MaxPool(Ptr(s.Input), Ptr(s.Output), _batch, s.H, s.W, s.C, s.Kernel, s.Stride, s.Padding);
                    break;
                case ZeroPadStep s:
                    NhwcOps.ZeroPadShortcut(Ptr(s.Input), Ptr(s.Output), _batch, s.H, s.W, s.InC, s.OutC, s.Stride);
                    break;
                case AveragePoolStep s:
                    fixed (float* f = _features.Span) NhwcOps.GlobalAverage(Ptr(s.Input), f, _batch, s.Pixels, s.C);
                    break;
            }
            Record(step.Name, step.Macs * _batch, ref start);
        }
        if (featuresOnly) return _features;
        fixed (float* f = _features.Span)
        fixed (float* y = _logits.Span)
            PackedGemm.Run(_fc, f, _fcOffsets, _batch, y, _fc.OutChannels, null, 0, relu: false);
        Record("fc", (long)_fc.InChannels * _fc.OutChannels * _batch, ref start);
        return _logits;
    }

    private void Record(string name, long macs, ref long start)
    {
        if (Profile is null) return;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        Profile.Add(new StepTime(name, macs, System.Diagnostics.Stopwatch.GetElapsedTime(start, now).TotalMilliseconds));
        start = now;
    }

    private float* Ptr(int slot) => _slots[slot].Pointer;

    private int Block(ResidualBlock<float> block, int input, ref int h, ref int w, ref int c)
    {
        int residual = -1;
        bool releaseResidual = false;
        switch (block.Shortcut)
        {
            case ShortcutKind.Identity:
                residual = input;
                break;
            case ShortcutKind.Projection:
                var ds = (Sequential<float>)block.Downsample!;
                int dh = h, dw = w, dc = c;
                residual = Conv((Conv2d<float>)ds[0], (BatchNorm2d<float>)ds[1], input, ref dh, ref dw, ref dc, -1, relu: false, releaseInput: false);
                releaseResidual = true;
                break;
            case ShortcutKind.ZeroPad:
                var zp = (ZeroPadShortcut<float>)block.Downsample!;
                int zh = (h + zp.Stride - 1) / zp.Stride, zw = (w + zp.Stride - 1) / zp.Stride;
                residual = Acquire(_batch * zh * zw * zp.OutChannels);
                _steps.Add(new ZeroPadStep(input, residual, h, w, zp.InChannels, zp.OutChannels, zp.Stride) { Name = zp.Label });
                releaseResidual = true;
                break;
        }

        int current = input;
        bool first = true;
        var convs = block switch
        {
            BasicBlock<float> b => new[] { (b.Conv1, b.Bn1), (b.Conv2, b.Bn2) },
            Bottleneck<float> b => new[] { (b.Conv1, b.Bn1), (b.Conv2, b.Bn2), (b.Conv3, b.Bn3) },
            _ => throw new NotSupportedException($"the fused inference path does not handle {block.Label}"),
        };
        for (int i = 0; i < convs.Length; i++)
        {
            bool lastConv = i == convs.Length - 1;
            int next = Conv(convs[i].Item1, convs[i].Item2, current, ref h, ref w, ref c, lastConv ? residual : -1, relu: true, releaseInput: !first);
            current = next;
            first = false;
        }
        // The last conv's output was acquired while the input and the shortcut were still live, so none alias.
        if (releaseResidual) Release(residual);
        Release(input);
        return current;
    }

    /// <summary>
    /// The Winograd tile for a convolution, or 0 for the direct product. The transformed weights of F(4x4) are 4x
    /// the direct ones (36 vs 9 values per channel pair), so with few tiles its products stream weights from memory
    /// instead of computing: measured on resnet18 at batch 1, 7x7 layers (4 tiles) ran 2.3x slower than direct,
    /// 14x14 (16 tiles) even, 28x28 (49 tiles) and up faster. F(2x2)'s are 16/9 of the direct ones and make 4x the
    /// tiles, which the small images at batch 1 can use.
    /// </summary>
    private int WinogradTileFor(in ConvGeometry g)
    {
        if (!_winograd || !Winograd.Supports(g)) return 0;
        if (Winograd.TileCount(g, _batch, 4) >= MinWinograd4Tiles) return 4;
        if (Winograd.TileCount(g, _batch, 2) >= MinWinograd2Tiles) return 2;
        return 0;
    }

    /// <summary>Adds a conv + folded BN (+ residual, ReLU) step; returns its output slot and updates the shape.</summary>
    private int Conv(Conv2d<float> conv, BatchNorm2d<float> bn, int input, ref int h, ref int w, ref int c, int residual, bool relu, bool releaseInput)
    {
        var g = conv.Geometry(h, w);
        // BN(conv(x) + b) = conv(x)·s + (β + (b − μ)·s) with s = γ/√(var + eps): fold s into the weights.
        var scale = new float[g.OutChannels];
        var bias = new float[g.OutChannels];
        for (int o = 0; o < g.OutChannels; o++)
        {
            double s = bn.Weight.Value.Span[o] / Math.Sqrt(bn.RunningVar.Span[o] + bn.Eps);
            double convBias = conv.Bias is null ? 0 : conv.Bias.Value.Span[o];
            scale[o] = (float)s;
            bias[o] = (float)(bn.Bias.Value.Span[o] + (convBias - bn.RunningMean.Span[o]) * s);
        }
        int output = Acquire(_batch * g.OutImage);
        int winogradTile = WinogradTileFor(g);
        string what = (winogradTile > 0 ? $"winograd F{winogradTile}" : "conv") + "+bn" + (residual >= 0 ? "+add" : "") + (relu ? "+relu" : "");
        string name = $"{conv.Name} ({what}, {g.InChannels}x{g.Height}x{g.Width} -> {g.OutChannels}x{g.OutHeight}x{g.OutWidth}, k{g.KernelH} s{g.Stride})";
        if (winogradTile > 0)
        {
            int tiles = Winograd.TileCount(g, _batch, winogradTile), points = Winograd.Points(winogradTile);
            bool chunked = Winograd.TakesChunks(g, _batch, winogradTile);
            if (!chunked)   // chunked layers use per-thread scratch of their own
            {
                _winogradInSize = Math.Max(_winogradInSize, points * tiles * g.InChannels);
                _winogradOutSize = Math.Max(_winogradOutSize, points * tiles * g.OutChannels);
            }
            var biasBuffer = new AlignedBuffer(g.OutChannels);
            bias.CopyTo(biasBuffer.Span);
            _steps.Add(new WinogradStep(g, Winograd.TransformWeights(conv.Weight.Value.Span, g.OutChannels, g.InChannels, scale, winogradTile), biasBuffer,
                Enumerable.Range(0, tiles).Select(t => t * g.InChannels).ToArray(), input, output, residual, relu, chunked) { Name = name, Macs = g.MacsPerImage });
        }
        else if (g.InChannels < 16 && g.KernelW > 1)
        {
            // Few input channels (the stem: 3): a tap of IC values gives the micro-kernel almost nothing to do per row
            // pointer. On a zero-padded copy of the input, the KW taps of a kernel row are KW·IC contiguous values, so
            // the product runs with KH taps of KW·IC channels each and no padding checks.
            int hp = g.Height + 2 * g.Padding, wp = g.Width + 2 * g.Padding, ch = g.InChannels, kw = g.KernelW;
            int padded = Acquire(_batch * hp * wp * ch);
            _steps.Add(new PadStep(input, padded, g.Height, g.Width, ch, g.Padding) { Name = $"{conv.Name} (zero padding)" });
            var weights = conv.Weight.Value.Span;
            var merged = new float[weights.Length];  // (OC, KW·IC, KH): channel index kw·IC + ic, tap kh
            for (int o = 0; o < g.OutChannels; o++)
                for (int ic = 0; ic < ch; ic++)
                    for (int kh = 0; kh < g.KernelH; kh++)
                        for (int k2 = 0; k2 < kw; k2++)
                            merged[((o * kw + k2) * ch + ic) * g.KernelH + kh] = weights[((o * ch + ic) * g.KernelH + kh) * kw + k2];
            var packed = PackedWeights.FromOihw(merged, g.OutChannels, kw * ch, g.KernelH, scale, bias);
            var offsets = new int[_batch * g.OutPlane * g.KernelH];
            int m = 0;
            for (int n = 0; n < _batch; n++)
                for (int oy = 0; oy < g.OutHeight; oy++)
                    for (int ox = 0; ox < g.OutWidth; ox++, m++)
                        for (int kh = 0; kh < g.KernelH; kh++)
                            offsets[m * g.KernelH + kh] = ((n * hp + oy * g.Stride + kh) * wp + ox * g.Stride) * ch;
            _steps.Add(new ConvStep(g, packed, offsets, padded, output, residual, relu) { Name = name, Macs = g.MacsPerImage });
            Release(padded);
        }
        else
        {
            var packed = PackedWeights.FromOihw(conv.Weight.Value.Span, g.OutChannels, g.InChannels, g.KernelH * g.KernelW, scale, bias);
            _steps.Add(new ConvStep(g, packed, NhwcConv.BuildOffsets(g, _batch), input, output, residual, relu) { Name = name, Macs = g.MacsPerImage });
        }
        if (releaseInput) Release(input);
        h = g.OutHeight; w = g.OutWidth; c = g.OutChannels;
        return output;
    }

    /// <summary>
    /// Whether a plan's conv + 3x3/2 max pool pairs (the ImageNet stem) run as one step (on by default; off: the two
    /// steps, only to measure it). `bench/run.sh --ab InferencePlan.FuseConvMaxPool=false,true --ab-work r18-b1
    /// --ab-layers --rounds 40..60`: the pair 0.871x, 0.872x and 0.886x in runs where a pass took 9.4–9.7 ms, but
    /// 0.959x, 1.048x and 1.091x where it took 10.6–16.7 ms (the machine's slow phases), the pass 0.987x–1.002x;
    /// resnet50 at batch 16 (12 rounds): the pair 0.745x (21.0 → 15.7 ms); resnet50 at batch 1: the pair 0.946x and
    /// 1.009x, the pass level.
    /// </summary>
    internal static bool FuseConvMaxPool = true;

    // The fused step for a conv (output slot convOutput, h x w x c) and the pool after it (pooledHeight rows): the
    // conv's indirection table cut into each band's rows.
    private ConvMaxPoolStep ConvMaxPool(ConvStep conv, int convOutput, int pooled, int h, int w, int c, int pooledHeight)
    {
        int bands = NhwcConv.PooledBandsPerImage(pooledHeight, _batch);
        int taps = conv.Offsets.Length / (_batch * h * w);
        var bandOffsets = new int[_batch * bands][];
        for (int n = 0; n < _batch; n++)
            for (int b = 0; b < bands; b++)
            {
                var (first, end) = NhwcConv.PooledBandRows(b * pooledHeight / bands, (b + 1) * pooledHeight / bands, h);
                bandOffsets[n * bands + b] = conv.Offsets.AsSpan(((n * h + first) * w) * taps, (end - first) * w * taps).ToArray();
            }
        return new ConvMaxPoolStep(conv, convOutput, bands, bandOffsets, pooled, h, w, c) { Name = $"{conv.Name} + maxpool 3x3/2", Macs = conv.Macs };
    }

    private int Acquire(int size)
    {
        // Reuse a free buffer (growing it if needed) before adding one: the plan needs only a handful in all.
        if (_free.Count > 0)
        {
            int slot = _free.Pop();
            _slotSizes[slot] = Math.Max(_slotSizes[slot], size);
            return slot;
        }
        _slotSizes.Add(size);
        return _slotSizes.Count - 1;
    }

    private void Release(int slot) => _free.Push(slot);
}
