using System.Numerics;
using System.Runtime.Intrinsics.X86;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Models;

/// <summary>How a block's input reaches its output.</summary>
public enum ShortcutKind
{
    /// <summary>y = relu(F(x) + x): shapes agree.</summary>
    Identity,
    /// <summary>y = relu(F(x) + BN(conv1x1(x))): torchvision's `downsample`, option B of the paper.</summary>
    Projection,
    /// <summary>y = relu(F(x) + pad(x[:, :, ::s, ::s])): the paper's CIFAR option A, no parameters.</summary>
    ZeroPad,
    /// <summary>y = relu(F(x)): the plain networks of the degradation experiment.</summary>
    None,
}

/// <summary>The shared shape of BasicBlock and Bottleneck: a residual branch F, a shortcut, the add and the final ReLU.</summary>
public abstract class ResidualBlock<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ResidualAdd<T> _add = new();
    private readonly ReLU<T> _outRelu = new();

    protected ResidualBlock(ShortcutKind shortcut, Module<T>? downsample)
    {
        Shortcut = shortcut;
        Downsample = downsample;
    }

    public ShortcutKind Shortcut { get; }
    /// <summary>The projection or zero-pad shortcut; null for identity and none.</summary>
    public Module<T>? Downsample { get; }

    /// <summary>The residual branch F, in order, with their state-dict names.</summary>
    protected abstract IEnumerable<(string Name, Module<T> Module)> Branch { get; }
    private Module<T>[]? _branchLayers;
    private Module<T>[] BranchLayers => _branchLayers ??= Branch.Select(b => b.Module).ToArray();

    public override IEnumerable<(string Name, Module<T> Module)> Children
    {
        get
        {
            foreach (var c in Branch) yield return c;
            if (Downsample is not null) yield return ("downsample", Downsample);
        }
    }

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        var shape = input.ToArray();
        foreach (var (_, m) in Branch) shape = m.OutputShape(shape);
        if (Shortcut == ShortcutKind.None) return shape;
        var sc = Downsample is null ? input.ToArray() : Downsample.OutputShape(input);
        if (!sc.AsSpan().SequenceEqual(shape))
            throw ShapeError(Tensor<T>.ShapeString(shape), sc, "the shortcut's output does not match the residual branch");
        return shape;
    }

    public override int[] Describe(ReadOnlySpan<int> input, List<LayerSummary> rows)
    {
        var shape = input.ToArray();
        foreach (var (_, m) in Branch) shape = m.Describe(shape, rows);
        Downsample?.Describe(input, rows);
        OutputShape(input);
        if (Shortcut != ShortcutKind.None) rows.Add(new LayerSummary(Join(Name, "add"), "Add", shape, 0, 0));
        rows.Add(new LayerSummary(Join(Name, "relu"), "ReLU", shape, 0, 0));
        return shape;
    }

    public override Tensor<T> Forward(Tensor<T> x)
    {
        var f = x;
        var branch = BranchLayers;
        // A last BN is run together with the add and the ReLU (one pass instead of two).
        bool normWithAdd = Shortcut != ShortcutKind.None && branch[^1] is BatchNorm2d<T>;
        int end = normWithAdd ? branch.Length - 1 : branch.Length;
        for (int i = 0; i < end; i++)
        {
            if (BatchNorm2d<T>.FusesReluAt(branch, i))
            {
                f = Timed(branch[i], f, forward: true, reluAfterNorm: true);
                i++;
                continue;
            }
            f = Timed(branch[i], f, forward: true);
        }
        if (Shortcut == ShortcutKind.None) return _outRelu.Forward(f);
        var shortcut = Downsample is null ? x : Timed(Downsample, x, forward: true);
        // The add and the final ReLU in one pass.
        if (!normWithAdd) return _add.Forward(f, shortcut, Label, relu: true);
        var norm = (BatchNorm2d<T>)branch[^1];
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var y = _add.ForwardNormAddRelu(norm, f, shortcut, Label);
        LayerProfile.Current?.Add(norm.Label, "forward", 0, start);
        return y;
    }

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var d = Shortcut == ShortcutKind.None ? _outRelu.Backward(dy) : _add.ReluBackward(dy);
        GradientBuffers<T>.Release(dy, keep: d);
        var dBranch = d;
        var branch = BranchLayers;
        for (int i = branch.Length - 1; i >= 0; i--)
        {
            if (BatchNorm2d<T>.IsFusedReluAt(branch, i)) continue;
            var dx = Timed(branch[i], dBranch, forward: false);
            if (dBranch != d) GradientBuffers<T>.Release(dBranch, keep: dx);  // d is read again by the shortcut
            dBranch = dx;
        }
        if (Shortcut == ShortcutKind.None)
        {
            GradientBuffers<T>.Release(d, keep: dBranch);
            return dBranch;
        }
        // dx = dBranch + the shortcut's gradient, added into dBranch (the first conv's input gradient, which nothing
        // else reads) rather than into a tensor of its own: one stream fewer. d(a + b)/db = 1, so the shortcut's
        // output gradient is d.
        if (Downsample is ZeroPadShortcut<T> zeroPad)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            zeroPad.AddInputGradient(d, dBranch);
            LayerProfile.Current?.Add(zeroPad.Label, "backward", 0, start);
            GradientBuffers<T>.Release(d, keep: dBranch);
            return dBranch;
        }
        var dShortcut = Downsample is null ? d : Timed(Downsample, d, forward: false);
        Kernels.Elementwise.Add<T>(dBranch.Span, dShortcut.Span, dBranch.Span);
        if (dShortcut != d) GradientBuffers<T>.Release(dShortcut, keep: dBranch);
        GradientBuffers<T>.Release(d, keep: dBranch);
        return dBranch;
    }

    // Runs one layer of the block, recording it in the active LayerProfile (resnet bench --train --profile).
    private static Tensor<T> Timed(Module<T> m, Tensor<T> input, bool forward, bool reluAfterNorm = false)
    {
        var profile = LayerProfile.Current;
        if (profile is null) return Run(m, input, forward, reluAfterNorm);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var shape = input.ShapeArray;
        var output = Run(m, input, forward, reluAfterNorm);
        if (m is not Sequential<T>) profile.Add(m.Label, forward ? "forward" : "backward", forward ? m.MacsPerImage(shape) * shape[0] : 0, start);
        return output;
    }

    private static Tensor<T> Run(Module<T> m, Tensor<T> input, bool forward, bool reluAfterNorm) =>
        !forward ? m.Backward(input) : reluAfterNorm ? ((BatchNorm2d<T>)m).Forward(input, relu: true) : m.Forward(input);
}

/// <summary>Two 3x3 convolutions (ResNet-18/34 and the CIFAR networks): conv1 (stride s) → bn1 → relu → conv2 → bn2.</summary>
public sealed class BasicBlock<T> : ResidualBlock<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const int Expansion = 1;
    private readonly ReLU<T> _relu = new();

    public BasicBlock(int inPlanes, int planes, int stride, ShortcutKind shortcut, Random rng)
        : base(shortcut, MakeShortcut(inPlanes, planes, stride, shortcut, rng))
    {
        Conv1 = new Conv2d<T>(inPlanes, planes, 3, stride, 1, rng: rng);
        Bn1 = new BatchNorm2d<T>(planes);
        Conv2 = new Conv2d<T>(planes, planes, 3, 1, 1, rng: rng);
        Bn2 = new BatchNorm2d<T>(planes);
    }

    public Conv2d<T> Conv1 { get; }
    public BatchNorm2d<T> Bn1 { get; }
    public Conv2d<T> Conv2 { get; }
    public BatchNorm2d<T> Bn2 { get; }
    public override string Kind => "BasicBlock";
    /// <summary>The BN whose γ zero-init-residual sets to 0, so the block starts as the identity.</summary>
    public BatchNorm2d<T> LastNorm => Bn2;

    protected override IEnumerable<(string, Module<T>)> Branch =>
        [("conv1", Conv1), ("bn1", Bn1), ("relu1", _relu), ("conv2", Conv2), ("bn2", Bn2)];

    internal static Module<T>? MakeShortcut(int inPlanes, int outPlanes, int stride, ShortcutKind kind, Random rng)
    {
        bool reshapes = stride != 1 || inPlanes != outPlanes;
        return kind switch
        {
            ShortcutKind.Identity when reshapes =>
                throw new ArgumentException($"an identity shortcut cannot map {inPlanes} channels at stride {stride} to {outPlanes}"),
            ShortcutKind.Projection => new Sequential<T>(new Conv2d<T>(inPlanes, outPlanes, 1, stride, 0, rng: rng), new BatchNorm2d<T>(outPlanes)),
            ShortcutKind.ZeroPad => new ZeroPadShortcut<T>(inPlanes, outPlanes, stride),
            _ => null,
        };
    }
}

/// <summary>
/// 1x1 reduce → 3x3 → 1x1 expand (×4), for ResNet-50/101/152. The stride sits on the 3x3 by default (torchvision,
/// "ResNet v1.5", about 0.5% better top-1); strideOnFirst1x1 puts it on conv1 as in the paper.
/// </summary>
public sealed class Bottleneck<T> : ResidualBlock<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public const int Expansion = 4;
    private readonly ReLU<T> _relu1 = new(), _relu2 = new();

    public Bottleneck(int inPlanes, int planes, int stride, ShortcutKind shortcut, Random rng, bool strideOnFirst1x1 = false)
        : base(shortcut, BasicBlock<T>.MakeShortcut(inPlanes, planes * Expansion, stride, shortcut, rng))
    {
        Conv1 = new Conv2d<T>(inPlanes, planes, 1, strideOnFirst1x1 ? stride : 1, 0, rng: rng);
        Bn1 = new BatchNorm2d<T>(planes);
        Conv2 = new Conv2d<T>(planes, planes, 3, strideOnFirst1x1 ? 1 : stride, 1, rng: rng);
        Bn2 = new BatchNorm2d<T>(planes);
        Conv3 = new Conv2d<T>(planes, planes * Expansion, 1, 1, 0, rng: rng);
        Bn3 = new BatchNorm2d<T>(planes * Expansion);
    }

    public Conv2d<T> Conv1 { get; }
    public BatchNorm2d<T> Bn1 { get; }
    public Conv2d<T> Conv2 { get; }
    public BatchNorm2d<T> Bn2 { get; }
    public Conv2d<T> Conv3 { get; }
    public BatchNorm2d<T> Bn3 { get; }
    public override string Kind => "Bottleneck";
    public BatchNorm2d<T> LastNorm => Bn3;

    protected override IEnumerable<(string, Module<T>)> Branch =>
        [("conv1", Conv1), ("bn1", Bn1), ("relu1", _relu1), ("conv2", Conv2), ("bn2", Bn2), ("relu2", _relu2), ("conv3", Conv3), ("bn3", Bn3)];
}

/// <summary>
/// The CIFAR option-A shortcut: y = x[:, :, ::s, ::s] with the new channels zero (half before, half after), as in
/// the reference implementation's F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4)).
/// </summary>
public sealed class ZeroPadShortcut<T> : Module<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private Tensor<T>? _output, _inputGrad;
    private int[]? _inputShape;

    public ZeroPadShortcut(int inChannels, int outChannels, int stride)
    {
        if (outChannels < inChannels) throw new ArgumentException($"ZeroPadShortcut: cannot shrink {inChannels} channels to {outChannels}");
        InChannels = inChannels; OutChannels = outChannels; Stride = stride;
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Stride { get; }
    private int PadBefore => (OutChannels - InChannels) / 2;
    public override string Kind => "ZeroPadShortcut";

    public override int[] OutputShape(ReadOnlySpan<int> input)
    {
        var (n, _, h, w) = ExpectNchw(input, InChannels);
        return [n, OutChannels, (h + Stride - 1) / Stride, (w + Stride - 1) / Stride];
    }

    public override unsafe Tensor<T> Forward(Tensor<T> x)
    {
        var shape = OutputShape(x.Shape);
        var y = Tensor<T>.Reuse(ref _output, false, shape);
        int n = x.N, h = x.H, w = x.W, oh = shape[2], ow = shape[3], s = Stride, inC = InChannels, outC = OutChannels, before = PadBefore;
        fixed (T* xp = x.Span) fixed (T* yp = y.Span)
        {
            nint px = (nint)xp, py = (nint)yp;
            // Image by image over the threads: the padding channels cleared, the others subsampled.
            Runtime.WorkerPool.For(n, b =>
            {
                T* dst = (T*)py + (long)b * outC * oh * ow;
                new Span<T>(dst, before * oh * ow).Clear();
                new Span<T>(dst + (long)(before + inC) * oh * ow, (outC - before - inC) * oh * ow).Clear();
                for (int c = 0; c < inC; c++)
                {
                    T* src = (T*)px + ((long)b * inC + c) * h * w;
                    T* d = dst + (long)(c + before) * oh * ow;
                    for (int i = 0; i < oh; i++)
                    {
                        if (Vectorised(s)) { Deinterleave.EvenColumns((float*)src + (long)i * s * w, w, (float*)d + i * ow); continue; }
                        for (int j = 0; j < ow; j++) d[i * ow + j] = src[(long)i * s * w + j * s];
                    }
                }
            });
        }
        _inputShape = x.ShapeArray;
        return y;
    }

    // Float at stride 2 on AVX-512: rows subsampled 16 columns at a time (Deinterleave), not element by element.
    private static bool Vectorised(int stride) => typeof(T) == typeof(float) && stride == 2 && Avx512F.IsSupported;

    public override Tensor<T> Backward(Tensor<T> dy)
    {
        var shape = _inputShape ?? throw new InvalidOperationException($"{Label}: Backward called before Forward");
        var dx = Tensor<T>.Reuse(ref _inputGrad, true, shape);
        AddInputGradient(dy, dx);
        return dx;
    }

    /// <summary>
    /// dx += the gradient of the shortcut's input: dy's middle channels back at the sampled pixels. A residual block
    /// adds it straight into its branch's gradient, where Backward's dx would be written, read and added again.
    /// </summary>
    internal unsafe void AddInputGradient(Tensor<T> dy, Tensor<T> dx)
    {
        int h = dx.H, w = dx.W, oh = dy.H, ow = dy.W, s = Stride, inC = InChannels, outC = OutChannels, before = PadBefore;
        fixed (T* dyp = dy.Span) fixed (T* dxp = dx.Span)
        {
            nint pdy = (nint)dyp, pdx = (nint)dxp;
            Runtime.WorkerPool.For(dx.N, b =>
            {
                T* dst = (T*)pdx + (long)b * inC * h * w;
                for (int c = 0; c < inC; c++)
                {
                    T* src = (T*)pdy + ((long)b * outC + c + before) * oh * ow;
                    T* d = dst + (long)c * h * w;
                    for (int i = 0; i < oh; i++)
                    {
                        if (Vectorised(s)) { Deinterleave.AddToEvenColumns((float*)d + (long)i * s * w, w, (float*)src + i * ow); continue; }
                        for (int j = 0; j < ow; j++) d[(long)i * s * w + j * s] += src[i * ow + j];
                    }
                }
            });
        }
    }
}
