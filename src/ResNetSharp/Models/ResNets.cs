using System.Numerics;
using ResNetSharp.NN;

namespace ResNetSharp.Models;

/// <summary>Options shared by every architecture; unset class count means 1000 (ImageNet family) or 10 (CIFAR family).</summary>
public sealed record ResNetOptions
{
    public int? NumClasses { get; init; }
    public int InChannels { get; init; } = 3;
    /// <summary>ImageNet depths only: a 3x3 stride-1 stem and no max pool, for 28x28 and 32x32 images.</summary>
    public bool SmallInputStem { get; init; }
    /// <summary>Zero the γ of each block's last BN so that every block starts as the identity (Goyal et al. 2017).</summary>
    public bool ZeroInitResidual { get; init; }
    /// <summary>Bottleneck only: stride on the first 1x1 (paper, Keras) instead of the 3x3 (torchvision v1.5).</summary>
    public bool StrideOnFirst1x1 { get; init; }
    /// <summary>Seed of the weight initialisation.</summary>
    public int Seed { get; init; }
}

/// <summary>Builds the ResNet family by name.</summary>
public static class ResNets
{
    private sealed record Spec(string Family, int[] Blocks, bool Bottleneck, bool Plain);

    private static readonly Dictionary<string, Spec> Specs = new(StringComparer.Ordinal)
    {
        ["resnet18"] = new("imagenet", [2, 2, 2, 2], false, false),
        ["resnet34"] = new("imagenet", [3, 4, 6, 3], false, false),
        ["resnet50"] = new("imagenet", [3, 4, 6, 3], true, false),
        ["resnet101"] = new("imagenet", [3, 4, 23, 3], true, false),
        ["resnet152"] = new("imagenet", [3, 8, 36, 3], true, false),
        ["plain18"] = new("imagenet", [2, 2, 2, 2], false, true),
        ["plain34"] = new("imagenet", [3, 4, 6, 3], false, true),
        ["resnet20"] = new("cifar", [3, 3, 3], false, false),
        ["resnet32"] = new("cifar", [5, 5, 5], false, false),
        ["resnet44"] = new("cifar", [7, 7, 7], false, false),
        ["resnet56"] = new("cifar", [9, 9, 9], false, false),
        ["resnet110"] = new("cifar", [18, 18, 18], false, false),
        ["plain20"] = new("cifar", [3, 3, 3], false, true),
        ["plain32"] = new("cifar", [5, 5, 5], false, true),
        ["plain44"] = new("cifar", [7, 7, 7], false, true),
        ["plain56"] = new("cifar", [9, 9, 9], false, true),
        ["plain110"] = new("cifar", [18, 18, 18], false, true),
    };

    /// <summary>Every architecture name <see cref="Create{T}"/> accepts.</summary>
    public static IReadOnlyList<string> Architectures => [.. Specs.Keys];

    public static bool IsCifar(string architecture) => Specs.TryGetValue(architecture, out var s) && s.Family == "cifar";

    /// <summary>A float ResNet by name (resnet18 … resnet152, resnet20 … resnet110, plain20 … plain110, plain18, plain34).</summary>
    public static ResNet<float> Create(string architecture, ResNetOptions? options = null) => Create<float>(architecture, options);

    public static ResNet<T> Create<T>(string architecture, ResNetOptions? options = null) where T : unmanaged, IFloatingPointIeee754<T>
    {
        options ??= new ResNetOptions();
        if (!Specs.TryGetValue(architecture, out var spec))
            throw new ArgumentException($"unknown architecture '{architecture}'; valid: {string.Join(", ", Specs.Keys)}", nameof(architecture));
        if (options.InChannels <= 0) throw new ArgumentException($"input channels must be positive, got {options.InChannels}");
        if (options.NumClasses is <= 0) throw new ArgumentException($"class count must be positive, got {options.NumClasses}");
        if (spec.Family == "cifar" && options.SmallInputStem)
            throw new ArgumentException($"{architecture} already has the small-input stem; the option applies to the ImageNet depths");
        var model = spec.Family == "cifar" ? BuildCifar<T>(architecture, spec, options) : BuildImageNet<T>(architecture, spec, options);
        if (options.ZeroInitResidual)
            foreach (var block in model.Blocks)
                (block is Bottleneck<T> b ? b.LastNorm : ((BasicBlock<T>)block).LastNorm).Weight.Value.Clear();
        return model;
    }

    /// <summary>He et al. 2015 §4.1 / torchvision: 64-channel stem, four stages of 64·2^i planes, fc on the pooled features.</summary>
    private static ResNet<T> BuildImageNet<T>(string name, Spec spec, ResNetOptions o) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(o.Seed);
        var layers = new List<(string, Module<T>)>();
        if (o.SmallInputStem)
            layers.Add(("conv1", new Conv2d<T>(o.InChannels, 64, 3, 1, 1, rng: rng)));
        else
            layers.Add(("conv1", new Conv2d<T>(o.InChannels, 64, 7, 2, 3, rng: rng)));
        layers.Add(("bn1", new BatchNorm2d<T>(64)));
        layers.Add(("relu", new ReLU<T>()));
        if (!o.SmallInputStem) layers.Add(("maxpool", new MaxPool2d<T>(3, 2, 1)));

        int expansion = spec.Bottleneck ? Bottleneck<T>.Expansion : BasicBlock<T>.Expansion;
        int inPlanes = 64;
        for (int stage = 0; stage < spec.Blocks.Length; stage++)
        {
            int planes = 64 << stage, stride = stage == 0 ? 1 : 2;
            var blocks = new List<Module<T>>();
            for (int i = 0; i < spec.Blocks[stage]; i++)
            {
                int s = i == 0 ? stride : 1;
                bool reshapes = s != 1 || inPlanes != planes * expansion;
                var shortcut = spec.Plain ? ShortcutKind.None : reshapes ? ShortcutKind.Projection : ShortcutKind.Identity;
                blocks.Add(spec.Bottleneck
                    ? new Bottleneck<T>(inPlanes, planes, s, shortcut, rng, o.StrideOnFirst1x1)
                    : new BasicBlock<T>(inPlanes, planes, s, shortcut, rng));
                inPlanes = planes * expansion;
            }
            layers.Add(($"layer{stage + 1}", new Sequential<T>(blocks.ToArray())));
        }
        AddHead(layers, inPlanes, o.NumClasses ?? 1000, rng);
        return new ResNet<T>(name, o, layers);
    }

    /// <summary>He et al. 2015 §4.2: 3x3 conv to 16 channels, three stages of n blocks at 16/32/64 channels, option A shortcuts.</summary>
    private static ResNet<T> BuildCifar<T>(string name, Spec spec, ResNetOptions o) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(o.Seed);
        var layers = new List<(string, Module<T>)>
        {
            ("conv1", new Conv2d<T>(o.InChannels, 16, 3, 1, 1, rng: rng)),
            ("bn1", new BatchNorm2d<T>(16)),
            ("relu", new ReLU<T>()),
        };
        int inPlanes = 16;
        for (int stage = 0; stage < spec.Blocks.Length; stage++)
        {
            int planes = 16 << stage, stride = stage == 0 ? 1 : 2;
            var blocks = new List<Module<T>>();
            for (int i = 0; i < spec.Blocks[stage]; i++)
            {
                int s = i == 0 ? stride : 1;
                bool reshapes = s != 1 || inPlanes != planes;
                var shortcut = spec.Plain ? ShortcutKind.None : reshapes ? ShortcutKind.ZeroPad : ShortcutKind.Identity;
                blocks.Add(new BasicBlock<T>(inPlanes, planes, s, shortcut, rng));
                inPlanes = planes;
            }
            layers.Add(($"layer{stage + 1}", new Sequential<T>(blocks.ToArray())));
        }
        AddHead(layers, inPlanes, o.NumClasses ?? 10, rng);
        return new ResNet<T>(name, o, layers);
    }

    private static void AddHead<T>(List<(string, Module<T>)> layers, int features, int classes, Random rng) where T : unmanaged, IFloatingPointIeee754<T>
    {
        layers.Add(("avgpool", new AdaptiveAvgPool2d<T>()));
        layers.Add(("flatten", new Flatten<T>()));
        layers.Add(("fc", new Linear<T>(features, classes, rng: rng)));
    }
}
