using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Models;

/// <summary>The fused NHWC evaluation path (BN folded, epilogue fusion, packed GEMM) against the layer-by-layer path.</summary>
public class FusedInferenceTests
{
    [Theory]
    [InlineData("resnet18", 3, 64, 48, 2, false)]
    [InlineData("resnet50", 3, 37, 45, 1, false)]
    [InlineData("resnet20", 3, 32, 32, 3, false)]
    [InlineData("plain20", 1, 28, 28, 2, false)]
    [InlineData("resnet34", 1, 28, 28, 2, true)]
    [InlineData("resnet101", 3, 32, 32, 1, false)]
    public void MatchesTheLayeredPath(string arch, int c, int h, int w, int batch, bool smallStem)
    {
        var model = ResNets.Create(arch, new ResNetOptions { InChannels = c, SmallInputStem = smallStem, Seed = 3 });
        var rng = new Random(4);
        var x = new Tensor<float>(batch, c, h, w);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        // Non-trivial BN statistics and affine parameters, so that folding has something to fold.
        foreach (var bn in model.Modules().OfType<BatchNorm2d<float>>())
            for (int i = 0; i < bn.Channels; i++)
            {
                bn.RunningMean.Span[i] = (float)(rng.NextDouble() - 0.5) * 0.2f;
                bn.RunningVar.Span[i] = 0.5f + (float)rng.NextDouble();
                bn.Weight.Value.Span[i] = 0.5f + (float)rng.NextDouble() * 0.5f;
                bn.Bias.Value.Span[i] = (float)(rng.NextDouble() - 0.5) * 0.2f;
            }
        model.Eval();
        model.FusedInference = false;
        var layered = model.Forward(x).Clone();
        var layeredFeatures = model.ForwardFeatures(x).Clone();
        model.FusedInference = true;
        Compare.Close(layered, model.Forward(x), Compare.Forward, $"{arch} fused logits");
        Compare.Close(layeredFeatures, model.ForwardFeatures(x), Compare.Forward, $"{arch} fused features");
    }

    /// <summary>The speed issue's bound: with Winograd F(4x4,3x3) on, resnet50 logits stay within 1e-3 of the direct path.</summary>
    [Theory]
    [InlineData("resnet50", 1, 224)]
    [InlineData("resnet18", 2, 160)]
    public void WinogradKeepsLogitsWithin1e3(string arch, int batch, int size)
    {
        var model = ResNets.Create(arch, new ResNetOptions { Seed = 8 });
        var rng = new Random(9);
        foreach (var bn in model.Modules().OfType<BatchNorm2d<float>>())
            for (int i = 0; i < bn.Channels; i++)
            {
                bn.RunningMean.Span[i] = (float)(rng.NextDouble() - 0.5) * 0.2f;
                bn.RunningVar.Span[i] = 0.5f + (float)rng.NextDouble();
            }
        var x = new Tensor<float>(batch, 3, size, size);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        model.Eval();
        model.WinogradInference = false;
        var direct = model.Forward(x).Clone();
        model.WinogradInference = true;
        var winograd = model.Forward(x);
        Compare.Close(direct, winograd, 1e-3, $"{arch} logits, Winograd vs direct");
        Assert.False(direct.Span.SequenceEqual(winograd.Span), "Winograd did not run: the outputs are bit-identical");
    }

    [Fact]
    public void ReplansWhenTheInputShapeOrTheWeightsChange()
    {
        var model = ResNets.Create("resnet20", new ResNetOptions { Seed = 1 });
        model.Eval();
        var a = model.Forward(new Tensor<float>(2, 3, 32, 32)).Clone();
        var b = model.Forward(new Tensor<float>(3, 3, 16, 24));
        Assert.Equal(new[] { 3, 10 }, b.ShapeArray);

        model.Fc.Bias!.Value.Span[0] += 1;
        model.StateChanged();
        var c = model.Forward(new Tensor<float>(2, 3, 32, 32));
        Assert.Equal(a.Span[0] + 1, c.Span[0], 1e-5);
    }

    [Fact]
    public void BackwardAfterAFusedForwardExplainsItself()
    {
        var model = ResNets.Create("resnet20");
        model.Eval();
        var y = model.Forward(new Tensor<float>(1, 3, 8, 8));
        var e = Assert.Throws<InvalidOperationException>(() => model.Backward(y));
        Assert.Contains("FusedInference = false", e.Message);
    }

    [Fact]
    public void ShapeErrorsStillNameTheLayer()
    {
        var model = ResNets.Create("resnet50");
        model.Eval();
        var e = Assert.Throws<ShapeMismatchException>(() => model.Forward(new Tensor<float>(1, 4, 64, 64)));
        Assert.Equal("conv1 (Conv2d)", e.Layer);
    }
}

/// <summary>
/// The ImageNet stem's conv and max pool run as one step in bands of pooled rows (NhwcConv.ForwardMaxPooled): the same
/// products and the same max windows as the two steps, so the same logits, bit for bit, at several batch sizes (one to
/// several bands an image) and odd image sizes. Alone, because the switch is process-wide.
/// </summary>
[Collection(nameof(ProcessWideSwitches))]
public class ConvMaxPoolFusionTests
{
    [Theory]
    [InlineData("resnet18", 1, 224, 224)]   // 56 pooled rows: 4 bands of 14
    [InlineData("resnet18", 3, 33, 31)]     // 9 pooled rows over 3 images: 2 bands an image
    [InlineData("resnet50", 5, 40, 18)]     // one band an image
    [InlineData("resnet34", 2, 7, 7)]       // 2x2 pooled
    [InlineData("resnet18", 1, 1, 1)]       // a 1x1 conv output: one pooled pixel, one band
    public void FusedStemMatchesConvThenPoolBitForBit(string arch, int batch, int h, int w)
    {
        var model = ResNets.Create(arch, new ResNetOptions { Seed = 5 });
        var rng = new Random(h * 31 + w);
        var x = new Tensor<float>(batch, 3, h, w);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        model.Eval();
        model.ProfileInference = true;
        var fused = model.Forward(x).Clone();
        Assert.Contains(model.LastInferenceProfile!, step => step.Name.Contains("maxpool 3x3/2"));
        InferencePlan.FuseConvMaxPool = false;
        try
        {
            var separate = model.Forward(x);
            for (int i = 0; i < fused.Length; i++)
                Assert.True(fused.Span[i] == separate.Span[i], $"logit {i}: fused {fused.Span[i]}, conv then pool {separate.Span[i]}");
        }
        finally { InferencePlan.FuseConvMaxPool = true; }
    }
}
