using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Onnx.Tests.Support;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx.Tests;

/// <summary>`resnet convert` and `resnet infer`, run as the real command.</summary>
public class CliTests
{
    [Fact]
    public void Torchvision_state_dict_converts_to_onnx_and_native_and_all_three_infer_alike()
    {
        using var dir = new Paths.TempDir();
        var model = ExportTests.Randomised("resnet18", new ResNetOptions { NumClasses = 7, Seed = 5 });
        string bare = dir.File("bare.safetensors");
        SafeTensors.Write(bare, StateDict.From(model));  // no metadata: a torchvision state dict
        var x = Ort.Random(3, 2, 3, 64, 48);
        string input = dir.File("x.npy");
        Npy.Write(input, x);
        var expected = model.Forward(x).Clone();

        var r = ResnetCommand.Run("convert", "--model", bare, "--arch", "resnet18", "--out", dir.File("m.onnx"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        r = ResnetCommand.Run("convert", "--model", dir.File("m.onnx"), "--out", dir.File("native.safetensors"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("resnet18", ModelFile.ReadMetadata(dir.File("native.safetensors"))!.Architecture);
        r = ResnetCommand.Run("convert", "--model", bare, "--arch", "resnet18", "--out", dir.File("native2.safetensors"));
        Assert.True(r.ExitCode == 0, r.Stderr);

        foreach (var (m, arch) in new[] { ("m.onnx", (string?)null), ("native.safetensors", null), ("native2.safetensors", null), ("bare.safetensors", "resnet18") })
        {
            var args = new List<string> { "infer", "--model", dir.File(m), "--input", input, "--output", dir.File(m + ".y.npy") };
            if (arch is not null) args.AddRange(["--arch", arch]);
            r = ResnetCommand.Run(args.ToArray());
            Assert.True(r.ExitCode == 0, $"{m}: {r.Stderr}");
            Ort.AssertClose(Npy.Read(dir.File(m + ".y.npy")), expected, $"infer {m}");
        }
        // The ONNX file written by convert runs in ONNX Runtime too.
        Ort.AssertClose(Ort.Run(dir.File("m.onnx"), x), expected, "ONNX Runtime on the converted file");

        r = ResnetCommand.Run("infer", "--model", dir.File("m.onnx"), "--input", input, "--output", dir.File("f.npy"), "--features");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Ort.AssertClose(Npy.Read(dir.File("f.npy")), model.ForwardFeatures(x).Clone(), "features");
    }

    [Fact]
    public void Infer_runs_a_torch_exported_onnx_model()
    {
        using var dir = new Paths.TempDir();
        string name = "resnet8_opset9";
        var r = ResnetCommand.Run("infer", "--model", Paths.Golden(name + ".onnx"), "--input", Paths.Golden(name + ".input.npy"), "--output", dir.File("y.npy"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Ort.AssertClose(Npy.Read(dir.File("y.npy")), Npy.Read(Paths.Golden(name + ".torch.npy")), "torch logits");
    }

    [Fact]
    public void Infer_runs_the_featurizer_with_its_preprocessing_graph()
    {
        using var dir = new Paths.TempDir();
        string model = Path.Combine(Paths.FeaturizerDir, "ResNet18Onnx", "ResNet18.onnx");
        string prep = Path.Combine(Paths.FeaturizerDir, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        var rng = new Random(4);
        var x = new Tensor<float>(1, 3, 224, 224);
        foreach (ref float v in x.Span) v = rng.Next(256);
        Npy.Write(dir.File("pixels.npy"), x);
        var r = ResnetCommand.Run("infer", "--model", model, "--preprocess", prep, "--input", dir.File("pixels.npy"), "--output", dir.File("f.npy"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("features (1, 512)", r.Stdout);
        Ort.AssertClose(Npy.Read(dir.File("f.npy")), Ort.Run(model, Ort.Run(prep, x)).Reshape(1, 512), "featurizer through resnet infer");
    }

    [Fact]
    public void Similar_sends_the_query_through_the_preprocessing_graph_the_index_was_made_with()
    {
        // The featurizer wants its ResNetPreprocess.onnx in front; an index made with it must embed queries the same way,
        // so every image is its own nearest neighbour at cosine 1.
        using var dir = new Paths.TempDir();
        string model = Path.Combine(Paths.FeaturizerDir, "ResNet18Onnx", "ResNet18.onnx");
        string prep = Path.Combine(Paths.FeaturizerDir, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        string images = dir.File("images");
        Directory.CreateDirectory(images);
        for (int i = 0; i < 3; i++) TinyPng.Write(Path.Combine(images, $"{i}.png"), 40 + 7 * i, 30 + 5 * i, (byte)(60 * i), (byte)(200 - 50 * i), 90);
        var r = ResnetCommand.Run("embed", "--model", model, "--preprocess", prep, "--images", images, "--out", dir.File("photos.index"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        r = ResnetCommand.Run("similar", "--index", dir.File("photos.index"), Path.Combine(images, "1.png"), "-k", "1", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        var best = doc.RootElement.GetProperty("neighbours")[0];
        Assert.EndsWith("1.png", best.GetProperty("path").GetString());
        Assert.Equal(1.0, best.GetProperty("cosine").GetDouble(), 5);
    }

    [Fact]
    public void Bad_inputs_fail_with_one_line_naming_the_file()
    {
        using var dir = new Paths.TempDir();
        string onnx = Paths.Golden("resnet8_opset9.onnx");
        string good = Paths.Golden("resnet8_opset9.input.npy");
        File.WriteAllBytes(dir.File("trunc.onnx"), File.ReadAllBytes(onnx)[..5000]);
        File.WriteAllText(dir.File("junk.onnx"), "this is not a model");
        Npy.Write(dir.File("wrong.npy"), new Tensor<float>(1, 4, 32, 32));
        File.WriteAllBytes(dir.File("short.npy"), File.ReadAllBytes(good)[..200]);
        var r18 = ResNets.Create("resnet18", new ResNetOptions { NumClasses = 3 });
        SafeTensors.Write(dir.File("r18.safetensors"), StateDict.From(r18));
        File.WriteAllBytes(dir.File("cut.safetensors"), File.ReadAllBytes(dir.File("r18.safetensors"))[..50000]);

        (string[] Args, int Code, string Expect)[] cases =
        [
            (["infer", "--model", dir.File("none.onnx"), "--input", good, "--output", dir.File("y.npy")], 1, "does not exist"),
            (["infer", "--model", dir.File("trunc.onnx"), "--input", good, "--output", dir.File("y.npy")], 1, "trunc.onnx"),
            (["infer", "--model", dir.File("junk.onnx"), "--input", good, "--output", dir.File("y.npy")], 1, "junk.onnx: not a valid ONNX model"),
            (["infer", "--model", onnx, "--input", dir.File("wrong.npy"), "--output", dir.File("y.npy")], 1, "does not fit the model"),
            (["infer", "--model", onnx, "--input", dir.File("short.npy"), "--output", dir.File("y.npy")], 1, "short.npy"),
            (["convert", "--model", onnx, "--out", dir.File("x.safetensors")], 1, "no ResNetSharp metadata"),
            (["convert", "--model", dir.File("r18.safetensors"), "--arch", "resnet34", "--out", dir.File("x.onnx")], 1, "r18.safetensors: cannot load as a resnet34: missing"),
            (["infer", "--model", dir.File("r18.safetensors"), "--input", good, "--output", dir.File("y.npy")], 1, "name its architecture (--arch)"),
            (["infer", "--model", dir.File("cut.safetensors"), "--arch", "resnet18", "--input", good, "--output", dir.File("y.npy")], 1, "cut.safetensors: tensor"),
            (["convert", "--model", onnx, "--out", dir.File("x.bin")], 2, "must be .onnx or .safetensors"),
            (["convert", "--model", good, "--out", dir.File("x.onnx"), "--arch", "resnet9000"], 2, "unknown architecture"),
        ];
        foreach (var (args, code, expect) in cases)
        {
            var r = ResnetCommand.Run(args);
            Assert.True(code == r.ExitCode, $"{string.Join(' ', args)}: exit {r.ExitCode}, stderr {r.Stderr}");
            Assert.Contains(expect, r.Stderr);
            Assert.StartsWith("resnet: error: ", r.Stderr);
            Assert.Single(r.Stderr.TrimEnd('\n').Split('\n'));
        }
        Assert.False(File.Exists(dir.File("y.npy")));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }
}

/// <summary>A minimal RGB PNG writer (stored as one zlib stream, filter 0), for images the commands decode.</summary>
internal static class TinyPng
{
    public static void Write(string path, int w, int h, byte r, byte g, byte b)
    {
        var raw = new MemoryStream();
        for (int y = 0; y < h; y++) { raw.WriteByte(0); for (int x = 0; x < w; x++) { raw.WriteByte(r); raw.WriteByte((byte)(g + x)); raw.WriteByte(b); } }
        var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) raw.WriteTo(zs);
        byte[] ihdr = [.. BigEndian(w), .. BigEndian(h), 8, 2, 0, 0, 0];
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])]);
    }

    private static byte[] BigEndian(int v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];

    private static byte[] Chunk(string type, byte[] data)
    {
        byte[] body = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        uint c = 0xFFFFFFFF;
        foreach (byte d in body)
        {
            c ^= d;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return [.. BigEndian(data.Length), .. body, .. BigEndian((int)~c)];
    }
}
