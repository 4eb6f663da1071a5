using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Onnx.Tests.Support;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx.Tests;

/// <summary>Models exported by <see cref="OnnxExporter"/>, run by ONNX Runtime and by our importer, against our native forward.</summary>
public class ExportTests
{
    /// <summary>A model with non-trivial BN statistics and affine parameters, so that no BN is an identity.</summary>
    internal static ResNet<float> Randomised(string arch, ResNetOptions? options = null, int seed = 7)
    {
        var model = ResNets.Create(arch, options ?? new ResNetOptions { Seed = seed });
        var rng = new Random(seed);
        foreach (var bn in model.Modules().OfType<BatchNorm2d<float>>())
        {
            foreach (ref float v in bn.RunningMean.Span) v = (float)(rng.NextDouble() * 0.2 - 0.1);
            foreach (ref float v in bn.RunningVar.Span) v = (float)(0.5 + rng.NextDouble());
            foreach (ref float v in bn.Weight.Value.Span) v = (float)(0.5 + rng.NextDouble() * 0.5);
            foreach (ref float v in bn.Bias.Value.Span) v = (float)(rng.NextDouble() * 0.2 - 0.1);
        }
        model.StateChanged();
        model.Eval();
        return model;
    }

    [Theory]
    [InlineData("resnet18", 13, 2, 3, 64, 80)]
    [InlineData("resnet50", 13, 1, 3, 96, 64)]
    [InlineData("resnet18", 9, 1, 3, 48, 48)]
    [InlineData("resnet20", 13, 3, 3, 32, 32)]
    [InlineData("resnet20", 7, 2, 3, 32, 40)]
    [InlineData("resnet20", 21, 1, 3, 32, 32)]
    public void Exported_model_runs_in_onnx_runtime_and_our_importer_like_the_native_model(string arch, int opset, int n, int c, int h, int w)
    {
        var model = Randomised(arch);
        var x = Ort.Random(11, n, c, h, w);
        var native = model.Forward(x).Clone();
        var bytes = OnnxExporter.ToBytes(model, ModelMetadata.For(model), opset);

        var ort = Ort.Run(bytes, x);
        Ort.AssertClose(ort, native, $"{arch} opset {opset}: ONNX Runtime vs native");
        var ours = OnnxGraph.FromBytes(bytes, arch).Run(x);
        Ort.AssertClose(ours, ort, $"{arch} opset {opset}: our import vs ONNX Runtime");
    }

    public static TheoryData<string, int, int, int> Variants => new()
    {
        { "plain20", 0, 3, 32 },                 // no shortcuts
        { "resnet18-small-stem-gray", 1, 1, 28 }, // 3x3 stem, no max pool, one input channel
        { "resnet50-stride-on-1x1", 2, 3, 64 },   // the paper's bottleneck stride
        { "resnet34-6-classes", 3, 3, 48 },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Model_variants_export_and_round_trip(string name, int which, int channels, int size)
    {
        var model = which switch
        {
            0 => Randomised("plain20"),
            1 => Randomised("resnet18", new ResNetOptions { InChannels = 1, SmallInputStem = true, NumClasses = 10, Seed = 2 }),
            2 => Randomised("resnet50", new ResNetOptions { StrideOnFirst1x1 = true, NumClasses = 20, Seed = 4 }),
            _ => Randomised("resnet34", new ResNetOptions { NumClasses = 6, Seed = 9 }),
        };
        var x = Ort.Random(which, 2, channels, size, size + 8);
        var native = model.Forward(x).Clone();
        var bytes = OnnxExporter.ToBytes(model, ModelMetadata.For(model));
        Ort.AssertClose(Ort.Run(bytes, x), native, $"{name}: ONNX Runtime vs native");
        Ort.AssertClose(OnnxGraph.FromBytes(bytes, name).Run(x), native, $"{name}: our import vs native");
    }

    [Fact]
    public void A_classifier_ending_in_softmax_gives_logits_and_features()
    {
        var model = Randomised("resnet20");
        var proto = global::Onnx.ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(model, ModelMetadata.For(model)));
        proto.MetadataProps.Clear();
        var g = proto.Graph;
        g.Node.Add(new global::Onnx.NodeProto { OpType = "Softmax", Name = "probabilities", Input = { OnnxExporter.OutputName }, Output = { "probs" }, Attribute = { Graphs.Int("axis", 1) } });
        g.Output[0].Name = "probs";
        using var dir = new Paths.TempDir();
        string path = dir.File("softmax.onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        var image = OnnxImageModel.Load(path);
        Assert.Equal("onnx", image.Metadata.Architecture);
        Assert.Equal(10, image.Metadata.NumClasses);
        Assert.Equal(Preprocessing.ImageNet.Mean, image.Metadata.Preprocess!.Mean);  // symbolic H, W: torchvision's 224 crop
        var x = Ort.Random(2, 2, 3, 32, 32);
        Ort.AssertClose(image.Logits(x), model.Forward(x).Clone(), "logits before the softmax");
        Ort.AssertClose(image.Features(x), model.ForwardFeatures(x).Clone(), "features");
        var probs = OnnxGraph.Load(path).Run(x);
        Ort.AssertClose(probs, Ort.Run(path, x), "probabilities");
    }

    [Fact]
    public void Large_batches_run_in_chunks_with_the_same_result()
    {
        using var dir = new Paths.TempDir();
        var model = Randomised("resnet20");
        string path = dir.File("r20.onnx");
        OnnxExporter.Export(model, ModelMetadata.For(model), path);
        var x = Ort.Random(4, OnnxImageModel.ChunkImages + 9, 3, 8, 8);
        Ort.AssertClose(OnnxImageModel.Load(path).Logits(x), model.Forward(x).Clone(), "chunked batch");
    }

    [Fact]
    public void Batch_dimension_is_dynamic()
    {
        var model = Randomised("resnet18");
        var bytes = OnnxExporter.ToBytes(model, ModelMetadata.For(model));
        foreach (int n in new[] { 1, 3 })
        {
            var x = Ort.Random(n, n, 3, 64, 64);
            Ort.AssertClose(Ort.Run(bytes, x), model.Forward(x).Clone(), $"batch {n}");
        }
    }

    [Fact]
    public void Round_trip_through_onnx_keeps_weights_metadata_and_outputs()
    {
        using var dir = new Paths.TempDir();
        var model = Randomised("resnet18", new ResNetOptions { NumClasses = 5, Seed = 3 });
        var labels = new[] { "a", "b", "c", "d", "e" };
        var metadata = ModelMetadata.For(model, labels, Preprocessing.ImageNet);
        string path = dir.File("m.onnx");
        OnnxExporter.Export(model, metadata, path);
        Assert.True(OnnxImporter.HasResNetMetadata(path));

        var (back, meta) = OnnxImporter.ToResNet(path);
        Assert.Equal("resnet18", meta.Architecture);
        Assert.Equal(labels, meta.Labels);
        Assert.Equal(224, meta.Preprocess!.Height);
        back.Eval();
        var x = Ort.Random(5, 2, 3, 64, 64);
        var expected = model.Forward(x).Clone();
        var actual = back.Forward(x);
        Assert.Equal(expected.Span.ToArray(), actual.Span.ToArray());

        var image = OnnxImageModel.Load(path);
        Assert.True(image.HasClassifier);
        Assert.Equal(512, image.FeatureSize);
        Assert.Equal(labels, image.Metadata.Labels);
        Ort.AssertClose(image.Logits(x), expected, "OnnxImageModel logits");
        Ort.AssertClose(image.Features(x), model.ForwardFeatures(x).Clone(), "OnnxImageModel features");
    }

    [Fact]
    public void Importing_a_graph_that_is_no_resnet_names_the_file()
    {
        using var dir = new Paths.TempDir();
        string path = dir.File("plain.onnx");
        File.WriteAllBytes(path, Graphs.Single("Relu", 13, [[1, 2]]));
        var e = Assert.Throws<InvalidDataException>(() => OnnxImporter.ToResNet(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("does not map onto a ResNetSharp architecture", e.Message);
        // resnet8 (one block per stage) has no ResNetSharp architecture.
        e = Assert.Throws<InvalidDataException>(() => OnnxImporter.ToResNet(Paths.Golden("resnet8_opset9.onnx")));
        Assert.Contains("does not map", e.Message);
    }

    [Fact]
    public void Torch_exported_resnet20_maps_onto_the_native_model()
    {
        var (model, metadata) = OnnxImporter.ToResNet(Paths.Golden("resnet20_opset13.onnx"));
        Assert.Equal("resnet20", metadata.Architecture);
        Assert.Equal(10, metadata.NumClasses);
        model.Eval();
        var x = Npy.Read(Paths.Golden("resnet20_opset13.input.npy"));
        Ort.AssertClose(model.Forward(x).Clone(), Npy.Read(Paths.Golden("resnet20_opset13.torch.npy")), "native from torch ONNX vs torch");
    }

    [Fact]
    public void Graph_with_unfolded_batchnorm_and_no_metadata_maps_back_exactly()
    {
        using var dir = new Paths.TempDir();
        var model = Randomised("resnet18", new ResNetOptions { NumClasses = 4, SmallInputStem = true, InChannels = 1, Seed = 8 });
        var proto = global::Onnx.ModelProto.Parser.ParseFrom(OnnxExporter.ToBytes(model, ModelMetadata.For(model)));
        proto.MetadataProps.Clear();
        string path = dir.File("anonymous.onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        var (back, metadata) = OnnxImporter.ToResNet(path);
        Assert.Equal("resnet18", metadata.Architecture);
        Assert.True(metadata.SmallInputStem);
        Assert.Equal(1, metadata.InChannels);
        var original = StateDict.From(model).Where(p => !p.Key.EndsWith("num_batches_tracked")).ToList();
        var mapped = StateDict.From(back).ToDictionary(p => p.Key, p => p.Value);
        foreach (var (name, t) in original) Assert.True(t.Data.AsSpan().SequenceEqual(mapped[name].Data), name);
    }

    [Fact]
    public void Export_is_atomic_and_rejects_unknown_opsets()
    {
        using var dir = new Paths.TempDir();
        var model = ResNets.Create("resnet20");
        Assert.Throws<ArgumentException>(() => OnnxExporter.Export(model, ModelMetadata.For(model), dir.File("x.onnx"), opset: 6));
        Assert.Empty(Directory.GetFiles(dir.Path));
        OnnxExporter.Export(model, ModelMetadata.For(model), dir.File("x.onnx"));
        Assert.Equal(["x.onnx"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }
}
