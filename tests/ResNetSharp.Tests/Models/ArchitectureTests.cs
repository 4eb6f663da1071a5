using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Tests.Models;

public class ArchitectureTests
{
    [Theory]
    [InlineData("resnet18", 11_689_512L)]
    [InlineData("resnet34", 21_797_672L)]
    [InlineData("resnet50", 25_557_032L)]
    [InlineData("resnet101", 44_549_160L)]
    [InlineData("resnet152", 60_192_808L)]
    public void ImageNetParameterCountsEqualTorchvision(string arch, long expected) =>
        Assert.Equal(expected, ResNets.Create(arch).ParameterCount);

    [Theory]
    [InlineData("resnet20", 269_722L)]
    [InlineData("resnet32", 464_154L)]
    [InlineData("resnet44", 658_586L)]
    [InlineData("resnet56", 853_018L)]
    [InlineData("resnet110", 1_727_962L)]
    [InlineData("plain20", 269_722L)]
    [InlineData("plain110", 1_727_962L)]
    public void CifarParameterCountsEqualThePaper(string arch, long expected) =>
        Assert.Equal(expected, ResNets.Create(arch).ParameterCount);

    [Theory]
    [InlineData("resnet18", 1.814)]
    [InlineData("resnet34", 3.664)]
    [InlineData("resnet50", 4.089)]
    [InlineData("resnet101", 7.801)]
    [InlineData("resnet152", 11.514)]
    public void MultiplyAddsWithinOnePercentOfTorchvision(string arch, double gmacs)
    {
        var s = ResNets.Create(arch).Summarize(3, 224, 224);
        Assert.InRange(s.Macs / 1e9, gmacs * 0.99, gmacs * 1.01);
        Assert.Equal(new[] { 1000 }, s.OutputShape);
    }

    [Fact]
    public void StateDictNamesAreTorchvisions()
    {
        var names = ResNets.Create("resnet50").NamedParameters().Select(p => p.Name).ToList();
        Assert.Equal("conv1.weight", names[0]);
        Assert.Contains("layer1.0.downsample.0.weight", names);
        Assert.Contains("layer1.0.downsample.1.bias", names);
        Assert.Contains("layer3.5.conv3.weight", names);
        Assert.Contains("layer4.2.bn3.weight", names);
        Assert.Equal(["fc.weight", "fc.bias"], names[^2..]);
        Assert.Equal(161, names.Count);  // len([p for p in torchvision.models.resnet50().parameters()])
        var buffers = ResNets.Create("resnet18").NamedBuffers().Select(b => b.Name).ToList();
        Assert.Contains("layer2.0.downsample.1.running_var", buffers);
        Assert.DoesNotContain(ResNets.Create("resnet18").NamedParameters(), p => p.Name.StartsWith("layer1.0.downsample"));
    }

    [Fact]
    public void BottleneckStrideDefaultsToThe3x3AndCanMoveToTheFirst1x1()
    {
        var v15 = (Bottleneck<float>)ResNets.Create("resnet50").Blocks.First(b => b.Name == "layer2.0");
        Assert.Equal((1, 2), (v15.Conv1.Stride, v15.Conv2.Stride));
        var v1 = (Bottleneck<float>)ResNets.Create("resnet50", new ResNetOptions { StrideOnFirst1x1 = true }).Blocks.First(b => b.Name == "layer2.0");
        Assert.Equal((2, 1), (v1.Conv1.Stride, v1.Conv2.Stride));
    }

    [Fact]
    public void ZeroInitResidualZerosEachBlocksLastNorm()
    {
        var model = ResNets.Create("resnet18", new ResNetOptions { ZeroInitResidual = true });
        foreach (var block in model.Blocks.Cast<BasicBlock<float>>())
            Assert.All(block.LastNorm.Weight.Value.Span.ToArray(), v => Assert.Equal(0f, v));
        Assert.All(((BasicBlock<float>)model.Blocks.First()).Bn1.Weight.Value.Span.ToArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void KaimingNormalFanOutInitialisation()
    {
        var conv = ResNets.Create("resnet18", new ResNetOptions { Seed = 5 }).Stem;
        var w = conv.Weight.Value.Span.ToArray();
        double std = Math.Sqrt(w.Select(v => (double)v * v).Average());
        Assert.InRange(std, Math.Sqrt(2.0 / (64 * 49)) * 0.95, Math.Sqrt(2.0 / (64 * 49)) * 1.05);
    }

    [Fact]
    public void SmallInputStemRunsImageNetDepthsOn28x28()
    {
        var model = ResNets.Create("resnet18", new ResNetOptions { SmallInputStem = true, InChannels = 1, NumClasses = 10 });
        Assert.Equal(3, model.Stem.KernelSize);
        Assert.DoesNotContain(model.Children, c => c.Name == "maxpool");
        model.Eval();
        var y = model.Forward(new Tensor<float>(2, 1, 28, 28));
        Assert.Equal(new[] { 2, 10 }, y.ShapeArray);
        Assert.Equal(new[] { 512, 4, 4 }, model.Summarize(1, 28, 28).Layers.Single(l => l.Name == "layer4.1.conv2").OutputShape[1..]);
    }

    [Fact]
    public void BackwardSkipsTheImageGradientUnlessAsked()
    {
        var model = ResNets.Create("resnet20", new ResNetOptions { InChannels = 1, Seed = 3 });
        var x = new Tensor<float>(2, 1, 12, 12);
        var rng = new Random(4);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)rng.NextDouble();
        var dy = new Tensor<float>(2, 10);
        dy.Fill(0.1f);
        Assert.False(model.ComputeInputGradient);
        model.Forward(x);
        Assert.Null(model.Backward(dy));
        Assert.Contains(model.Stem.Weight.Grad.Span.ToArray(), g => g != 0);

        model.ComputeInputGradient = true;
        model.Forward(x);
        var dx = model.Backward(dy);
        Assert.Equal(x.ShapeArray, dx.ShapeArray);
        Assert.Contains(dx.Span.ToArray(), g => g != 0);
    }

    [Fact]
    public void PlainTwinsHaveNoShortcuts()
    {
        Assert.All(ResNets.Create("plain20").Blocks, b => Assert.Equal(ShortcutKind.None, b.Shortcut));
        var resnet = ResNets.Create("resnet20").Blocks.ToList();
        Assert.Equal(ShortcutKind.ZeroPad, resnet.Single(b => b.Name == "layer2.0").Shortcut);
        Assert.Equal(ShortcutKind.Identity, resnet.Single(b => b.Name == "layer2.1").Shortcut);
    }

    [Fact]
    public void UnknownArchitectureListsTheValidOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => ResNets.Create("resnet19"));
        Assert.Contains("resnet19", e.Message);
        foreach (var a in ResNets.Architectures) Assert.Contains(a, e.Message);
    }

    [Fact]
    public void WrongChannelCountNamesLayerExpectedAndActual()
    {
        var model = ResNets.Create("resnet18");
        var e = Assert.Throws<ShapeMismatchException>(() => model.Forward(new Tensor<float>(1, 1, 32, 32)));
        Assert.Equal("conv1 (Conv2d)", e.Layer);
        Assert.Contains("(N, 3, H, W)", e.Message);
        Assert.Contains("(1, 1, 32, 32)", e.Message);
    }

    [Fact]
    public void WrongRankIsRejected()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => ResNets.Create("resnet20").Forward(new Tensor<float>(3, 32, 32)));
        Assert.Contains("rank", e.Message);
        Assert.Contains("(3, 32, 32)", e.Message);
    }

    [Fact]
    public void TooSmallSpatialSizeNamesTheLayerThatCannotTakeIt()
    {
        var conv = new Conv2d<float>(3, 8, 7, 2, 0);
        conv.AssignNames("stem");
        var e = Assert.Throws<ShapeMismatchException>(() => conv.Forward(new Tensor<float>(1, 3, 5, 5)));
        Assert.Equal("stem (Conv2d)", e.Layer);
        Assert.Contains("smaller than the 7x7 kernel", e.Message);
        Assert.Contains("(1, 3, 5, 5)", e.Message);
    }

    [Fact]
    public void ForwardAgreesWithSummaryShapes()
    {
        var model = ResNets.Create("resnet34");
        model.Eval();
        var s = model.Summarize(3, 64, 48);
        var y = model.Forward(new Tensor<float>(1, 3, 64, 48));
        Assert.Equal(s.OutputShape, y.ShapeArray[1..]);
    }

    [Fact]
    public void ResNet50Batch1At224GivesFiniteLogits()
    {
        var model = ResNets.Create("resnet50");
        model.Eval();
        var y = model.Forward(new Tensor<float>(1, 3, 224, 224));
        Assert.Equal(new[] { 1, 1000 }, y.ShapeArray);
        Assert.All(y.Span.ToArray(), v => Assert.True(float.IsFinite(v)));
    }
}
