using System.Text.Json;

namespace ResNetSharp.Tests.Cli;

/// <summary>`resnet train` and `resnet eval` as a user runs them, on the embedded Fashion-MNIST sample.</summary>
public sealed class TrainCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnetsharp-train-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void TrainWritesTheRunFolderResumesAndEvaluates()
    {
        string run = Path.Combine(_dir, "run");
        var r = Support.Cli.Run("train", "--data", "fashion-mnist-sample", "--train-images", "256", "--epochs", "1", "--batch", "64",
            "--schedule", "constant", "--lr", "0.05", "--out", run, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using (var doc = JsonDocument.Parse(r.Stdout))
        {
            Assert.Equal(1, doc.RootElement.GetProperty("epochs").GetInt32());
            Assert.Equal(256, doc.RootElement.GetProperty("train_images").GetInt32());
            Assert.InRange(doc.RootElement.GetProperty("final_test_accuracy").GetDouble(), 0, 1);
        }
        foreach (var f in new[] { "checkpoint.safetensors", "checkpoint.json", "best.safetensors", "model.safetensors", "metrics.csv", "metrics.jsonl", "curves.png" })
            Assert.True(File.Exists(Path.Combine(run, f)), f);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(run, "curves.png"))[..4]);
        Assert.StartsWith("epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy", File.ReadAllLines(Path.Combine(run, "metrics.csv"))[0]);

        // Resume with one more epoch: the run's own options, the same folder.
        var resumed = Support.Cli.Run("train", "--resume", Path.Combine(run, "checkpoint.safetensors"), "--epochs", "2", "--json");
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "metrics.csv")).Length);
        using (var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "checkpoint.json"))))
            Assert.Equal(2, state.RootElement.GetProperty("epoch").GetInt32());

        var e = Support.Cli.Run("eval", "--model", Path.Combine(run, "model.safetensors"), "--data", "fashion-mnist-sample", "--json");
        Assert.True(e.ExitCode == 0, e.Stderr);
        using var ev = JsonDocument.Parse(e.Stdout);
        double acc = ev.RootElement.GetProperty("accuracy").GetDouble();
        var confusion = ev.RootElement.GetProperty("confusion_matrix").EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        Assert.Equal(1000, confusion.Sum(row => row.Sum()));
        Assert.Equal(acc, Enumerable.Range(0, 10).Sum(i => confusion[i][i]) / 1000.0, 12);
        Assert.Equal(10, ev.RootElement.GetProperty("per_class_accuracy").GetArrayLength());
        // The trainer's last test accuracy is what eval measures on the saved model.
        var last = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"))[^1];
        using var m = JsonDocument.Parse(last);
        Assert.Equal(m.RootElement.GetProperty("test_accuracy").GetDouble(), acc, 12);
    }

    private static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte d in data)
        {
            c ^= d;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    /// <summary>A minimal RGB PNG (one IDAT, no filtering), enough for the imaging library to decode.</summary>
    private static void WritePng(string path, int w, int h, byte r, byte g, byte b)
    {
        static byte[] Chunk(string type, byte[] data)
        {
            var t = System.Text.Encoding.ASCII.GetBytes(type);
            var body = t.Concat(data).ToArray();
            var len = BitConverter.GetBytes(data.Length).Reverse();
            var crc = BitConverter.GetBytes(Crc32(body)).Reverse();
            return [.. len, .. body, .. crc];
        }
        var raw = new MemoryStream();
        for (int y = 0; y < h; y++) { raw.WriteByte(0); for (int x = 0; x < w; x++) { raw.WriteByte(r); raw.WriteByte(g); raw.WriteByte(b); } }
        var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) raw.WriteTo(zs);
        var ihdr = BitConverter.GetBytes(w).Reverse().Concat(BitConverter.GetBytes(h).Reverse()).Concat(new byte[] { 8, 2, 0, 0, 0 }).ToArray();
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])]);
    }

    [Fact]
    public void TrainsOnAnImageFolderWithTrainAndTestSplits()
    {
        string data = Path.Combine(_dir, "folders");
        foreach (var split in new[] { "train", "test" })
            foreach (var (name, r, b) in new[] { ("blue", (byte)20, (byte)220), ("red", (byte)220, (byte)20) })
            {
                Directory.CreateDirectory(Path.Combine(data, split, name));
                for (int i = 0; i < (split == "train" ? 8 : 3); i++) WritePng(Path.Combine(data, split, name, $"{i}.png"), 20 + i, 16 + 2 * i, r, (byte)(40 + 10 * i), b);
            }
        string run = Path.Combine(_dir, "folder-run");
        var t = Support.Cli.Run("train", "--arch", "resnet18", "--small-input-stem", "--data", $"folder:{data}", "--image-size", "16",
            "--epochs", "1", "--batch", "8", "--out", run, "--json");
        Assert.True(t.ExitCode == 0, t.Stderr);
        using var doc = JsonDocument.Parse(t.Stdout);
        Assert.Equal(16, doc.RootElement.GetProperty("train_images").GetInt32());
        Assert.Equal(6, doc.RootElement.GetProperty("test_images").GetInt32());
        var e = Support.Cli.Run("eval", "--model", Path.Combine(run, "model.safetensors"), "--data", $"folder:{data}", "--json");
        Assert.True(e.ExitCode == 0, e.Stderr);
        using var ev = JsonDocument.Parse(e.Stdout);
        Assert.Equal(new[] { "blue", "red" }, ev.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(6, ev.RootElement.GetProperty("images").GetInt32());
        // A folder without train/ and test/ inside is, for eval, all labelled images to score.
        var whole = Support.Cli.Run("eval", "--model", Path.Combine(run, "model.safetensors"), "--data", $"folder:{Path.Combine(data, "train")}", "--json");
        Assert.True(whole.ExitCode == 0, whole.Stderr);
        using var w = JsonDocument.Parse(whole.Stdout);
        Assert.Equal(16, w.RootElement.GetProperty("images").GetInt32());
    }

    [Fact]
    public void CorruptImageInAFolderIsNamedInTheError()
    {
        string data = Path.Combine(_dir, "bad");
        Directory.CreateDirectory(Path.Combine(data, "a"));
        Directory.CreateDirectory(Path.Combine(data, "b"));
        for (int i = 0; i < 10; i++) { WritePng(Path.Combine(data, "a", $"{i}.png"), 8, 8, 1, 2, 3); WritePng(Path.Combine(data, "b", $"{i}.png"), 8, 8, 9, 9, 9); }
        File.WriteAllBytes(Path.Combine(data, "b", "5.png"), File.ReadAllBytes(Path.Combine(data, "b", "4.png"))[..40]);
        var t = Support.Cli.Run("train", "--data", $"folder:{data}", "--image-size", "8", "--epochs", "1", "--batch", "4", "--out", Path.Combine(_dir, "bad-run"));
        Assert.Equal(1, t.ExitCode);
        Assert.Contains(Path.Combine(data, "b", "5.png"), t.Stderr);
    }

    [Theory]
    [InlineData(2, "--data 'mnist-ish' is not a data set", "train", "--data", "mnist-ish")]
    [InlineData(1, "apt-get install dataset-fashion-mnist", "train", "--data", "fashion-mnist:/no/such/folder")]
    [InlineData(1, "the embedded sample when it is not installed", "train", "--data", "fashion-mnist:/no/such/folder")]
    [InlineData(2, "--optimizer must be sgd or adamw", "train", "--optimizer", "lbfgs")]
    [InlineData(2, "--schedule multistep needs --milestones", "train", "--schedule", "multistep")]
    [InlineData(2, "--milestones '3,x' is not a list", "train", "--schedule", "multistep", "--milestones", "3,x")]
    [InlineData(2, "warm-up (5 epochs) must be shorter than training (2)", "train", "--epochs", "2", "--warmup-epochs", "5")]
    [InlineData(1, "no such file", "train", "--resume", "/no/such/checkpoint.safetensors")]
    [InlineData(2, "--resume continues a run with the options it was started with; --lr cannot change", "train", "--resume", "x.safetensors", "--lr", "0.5")]
    [InlineData(1, "no such file", "eval", "--model", "/no/such/model.safetensors")]
    public void BadRequestsGetOneClearLine(int exitCode, string message, params string[] args)
    {
        var r = Support.Cli.Run(args);
        Assert.Equal(exitCode, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.StartsWith("resnet: error:", r.Stderr.Trim());
    }

    [Fact]
    public void DivergingLearningRateStopsWithExitOne()
    {
        string run = Path.Combine(_dir, "nan");
        var r = Support.Cli.Run("train", "--data", "fashion-mnist-sample", "--train-images", "128", "--epochs", "2", "--batch", "64",
            "--lr", "1e30", "--schedule", "constant", "--out", run);
        Assert.Equal(1, r.ExitCode);
        Assert.Matches("the training loss became (NaN|∞|-∞|Infinity)", r.Stderr);
    }
}
