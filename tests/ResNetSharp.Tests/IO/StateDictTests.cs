using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Tensors;

namespace ResNetSharp.Tests.IO;

public class StateDictTests
{
    [Fact]
    public void RoundTripsThroughSafetensorsAndReproducesOutputs()
    {
        var a = ResNets.Create("resnet20", new ResNetOptions { Seed = 1 });
        var x = new Tensor<float>(2, 3, 16, 16);
        for (int i = 0; i < x.Length; i++) x.Span[i] = MathF.Sin(i);
        a.Forward(x);  // training-mode forward: running statistics move away from 0 and 1
        a.Eval();
        var expected = a.Forward(x).Clone();

        string path = Path.Combine(Path.GetTempPath(), $"sd-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Write(path, StateDict.From(a));
            var b = ResNets.Create("resnet20", new ResNetOptions { Seed = 2 });
            StateDict.Load(b, SafeTensors.Read(path).Tensors);
            b.Eval();
            Assert.Equal(expected.Span.ToArray(), b.Forward(x).Span.ToArray());
            Assert.Equal(1, b.Modules().OfType<ResNetSharp.NN.BatchNorm2d<float>>().First().NumBatchesTracked);

            // Streamed straight from the file into the parameters: the same model, float and double.
            var c = ResNets.Create("resnet20", new ResNetOptions { Seed = 3 });
            StateDict.Load(c, path);
            c.Eval();
            Assert.Equal(expected.Span.ToArray(), c.Forward(x).Span.ToArray());
            Assert.Equal(1, c.Modules().OfType<ResNetSharp.NN.BatchNorm2d<float>>().Last().NumBatchesTracked);
            var d = ResNets.Create<double>("resnet20");
            StateDict.Load(d, path);
            Assert.Equal((double)a.Fc.Weight.Value.Span[7], d.Fc.Weight.Value.Span[7]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void MissingUnexpectedAndMisshapenEntriesAreNamed()
    {
        var state = StateDict.From(ResNets.Create("resnet20")).ToDictionary();
        var model = ResNets.Create("resnet20");

        var missing = new Dictionary<string, SafeTensor>(state);
        missing.Remove("layer2.1.conv1.weight");
        Assert.Contains("missing 1 entries (layer2.1.conv1.weight)", Assert.Throws<InvalidDataException>(() => StateDict.Load(model, missing)).Message);

        var extra = new Dictionary<string, SafeTensor>(state) { ["head.weight"] = SafeTensor.FromFloat32([1f], 1) };
        Assert.Contains("unexpected 1 entries (head.weight)", Assert.Throws<InvalidDataException>(() => StateDict.Load(model, extra)).Message);
        StateDict.Load(model, extra, strict: false);

        var wrong = new Dictionary<string, SafeTensor>(state) { ["fc.weight"] = SafeTensor.FromFloat32(new float[640], 64, 10) };
        Assert.Contains("fc.weight: shape (64, 10) in the file, the model has (10, 64)", Assert.Throws<InvalidDataException>(() => StateDict.Load(model, wrong)).Message);

        string path = Path.Combine(Path.GetTempPath(), $"sd-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Write(path, missing);
            Assert.Contains("missing 1 entries (layer2.1.conv1.weight)", Assert.Throws<InvalidDataException>(() => StateDict.Load(model, path)).Message);
            SafeTensors.Write(path, wrong);
            Assert.Contains($"fc.weight: shape (64, 10) in {path}, the model has (10, 64)", Assert.Throws<InvalidDataException>(() => StateDict.Load(model, path)).Message);
        }
        finally { File.Delete(path); }
    }
}
