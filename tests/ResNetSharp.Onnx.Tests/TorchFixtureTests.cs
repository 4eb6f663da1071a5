using ResNetSharp.IO;
using ResNetSharp.Onnx.Tests.Support;

namespace ResNetSharp.Onnx.Tests;

/// <summary>ONNX files exported by PyTorch 1.13 (tools/interop/make_onnx_fixtures.py), against ONNX Runtime and torch's own outputs.</summary>
public class TorchFixtureTests
{
    [Theory]
    [InlineData("resnet20_opset13")]
    [InlineData("resnet8_opset9")]
    [InlineData("resnet8_opset7")]
    public void Torch_export_matches_onnx_runtime_and_torch(string name)
    {
        string path = Paths.Golden(name + ".onnx");
        var x = Npy.Read(Paths.Golden(name + ".input.npy"));
        var torch = Npy.Read(Paths.Golden(name + ".torch.npy"));
        Assert.Equal([2, 3, 32, 40], x.ShapeArray);

        var model = OnnxImageModel.Load(path);
        var ours = model.Logits(x).Clone();
        var ort = Ort.Run(path, x);
        Ort.AssertClose(ours, ort, $"{name}: ours vs ONNX Runtime");
        Ort.AssertClose(ours, torch, $"{name}: ours vs torch");
        Assert.True(model.HasClassifier);
        Assert.Equal(64, model.FeatureSize);
        Assert.Equal([2, 64], model.Features(x).ShapeArray);
        Assert.Equal("onnx", model.Metadata.Architecture);
        Assert.Equal(10, model.Metadata.NumClasses);
    }
}
