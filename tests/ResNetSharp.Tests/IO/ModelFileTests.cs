using ResNetSharp.IO;
using ResNetSharp.Models;

namespace ResNetSharp.Tests.IO;

/// <summary>Native model files: weights plus metadata, loaded back whole; bad metadata named with the file.</summary>
public sealed class ModelFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnetsharp-modelfile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void RoundTripKeepsWeightsLabelsAndPreprocessing()
    {
        var model = ResNets.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 3, Seed = 9 });
        string path = Path.Combine(_dir, "m.safetensors");
        ModelFile.Save(model, ModelMetadata.For(model, ["a", "b", "c"], Preprocessing.FashionMnist), path);
        var (loaded, meta) = ModelFile.Load(path);
        Assert.Equal(new[] { "a", "b", "c" }, meta.Labels!);
        Assert.Equal(Preprocessing.FashionMnist.Mean, meta.Preprocess!.Mean);
        Assert.Equal(model.NamedParameters().SelectMany(p => p.Parameter.Value.Span.ToArray()),
                     loaded.NamedParameters().SelectMany(p => p.Parameter.Value.Span.ToArray()));
    }

    [Theory]
    [InlineData("{\"format\":\"resnetsharp/1\",\"architecture\":\"resnet20\",\"num_classes\":3,\"in_channels\":1,\"preprocess\":{\"height\":28,\"width\":28,\"channels\":2,\"mean\":[0,0],\"std\":[1,1]}}", "channels must be 1 or 3")]
    [InlineData("{\"format\":\"resnetsharp/1\",\"architecture\":\"resnet20\",\"num_classes\":3,\"labels\":[\"a\"]}", "1 labels for 3 classes")]
    [InlineData("{\"format\":\"other/9\",\"architecture\":\"resnet20\",\"num_classes\":3}", "format 'other/9'")]
    [InlineData("not json", "not valid JSON")]
    public void BadMetadataIsAnErrorNamingTheFile(string json, string message)
    {
        string path = Path.Combine(_dir, "bad.safetensors");
        SafeTensors.Write(path, [new("w", SafeTensor.FromFloat32([1f], 1))], new Dictionary<string, string> { [ModelFile.MetadataKey] = json });
        var e = Assert.Throws<InvalidDataException>(() => ModelFile.ReadMetadata(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void BareStateDictNeedsAnArchitectureAndGetsItsCountsFromTheWeights()
    {
        var model = ResNets.Create("resnet18", new ResNetOptions { NumClasses = 5, SmallInputStem = true });
        string path = Path.Combine(_dir, "bare.safetensors");
        SafeTensors.Write(path, StateDict.From(model));
        Assert.Contains("--arch", Assert.Throws<InvalidDataException>(() => ModelFile.Load(path)).Message);
        var (_, meta) = ModelFile.Load(path, "resnet18");
        Assert.Equal((5, 3, true), (meta.NumClasses, meta.InChannels, meta.SmallInputStem));
    }
}
