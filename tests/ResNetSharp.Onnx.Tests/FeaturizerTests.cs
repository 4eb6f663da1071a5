using ResNetSharp.Onnx.Tests.Support;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx.Tests;

/// <summary>The ImageNet-pretrained ResNet-18 featurizer of Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (CNTK, opset 8).</summary>
public class FeaturizerTests
{
    private static string Model => Path.Combine(Paths.FeaturizerDir, "ResNet18Onnx", "ResNet18.onnx");
    private static string Prep => Path.Combine(Paths.FeaturizerDir, "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>Raw 0..255 pixels, as ML.NET feeds the preprocessing graph.</summary>
    private static Tensor<float> Pixels(int seed, int n)
    {
        var rng = new Random(seed);
        var t = new Tensor<float>(n, 3, 224, 224);
        foreach (ref float v in t.Span) v = rng.Next(256);
        return t;
    }

    [Fact]
    public void Featurizer_with_its_preprocessing_matches_onnx_runtime()
    {
        Assert.True(File.Exists(Model), $"{Model} is missing: the build restores Microsoft.ML.DnnImageFeaturizer.ResNet18 (PackageDownload)");
        var model = OnnxImageModel.Load(Model, Prep);
        Assert.False(model.HasClassifier);
        Assert.Equal(512, model.FeatureSize);
        Assert.Equal("onnx", model.Metadata.Architecture);
        Assert.Equal(1f, model.Metadata.Preprocess!.PixelScale);

        var x = Pixels(1, 2);
        var ours = model.Features(x).Clone();
        Assert.Equal([2, 512], ours.ShapeArray);
        for (int i = 0; i < 2; i++)
        {
            var one = Tensor<float>.FromArray(x.Span.Slice(i * 3 * 224 * 224, 3 * 224 * 224), 1, 3, 224, 224);
            var pre = Ort.Run(Prep, one);
            var reference = Ort.Run(Model, pre);
            Ort.AssertClose(Tensor<float>.FromArray(ours.Span.Slice(i * 512, 512), 1, 512), reference.Reshape(1, 512), $"featurizer image {i}");
        }
    }

    [Fact]
    public void Featurizer_alone_matches_onnx_runtime()
    {
        var graph = OnnxGraph.Load(Model);
        var x = Pixels(2, 1);
        foreach (ref float v in x.Span) v -= 120f;
        Ort.AssertClose(graph.Run(x), Ort.Run(Model, x), "featurizer without preprocessing");
    }
}
