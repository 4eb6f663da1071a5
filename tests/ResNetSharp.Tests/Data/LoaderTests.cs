using System.IO.Compression;
using ResNetSharp.Data;

namespace ResNetSharp.Tests.Data;

/// <summary>idx, CIFAR and the embedded sample on small files written here, including truncated and corrupt ones.</summary>
public sealed class LoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnetsharp-data-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static byte[] Pixels(int n, int per) => [.. Enumerable.Range(0, n * per).Select(i => (byte)(i * 7 % 251))];

    private void WriteMnistStyle(string prefix, int n, bool gz)
    {
        string ext = gz ? ".gz" : "";
        Idx.Write(P($"{prefix}-images-idx3-ubyte{ext}"), Pixels(n, 28 * 28), n, 28, 28);
        Idx.Write(P($"{prefix}-labels-idx1-ubyte{ext}"), [.. Enumerable.Range(0, n).Select(i => (byte)(i % 10))], n);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxRoundTripsPlainAndGzipped(bool gz)
    {
        WriteMnistStyle("train", 5, gz);
        WriteMnistStyle("t10k", 3, gz);
        var train = FashionMnist.Load(_dir, train: true);
        var test = FashionMnist.Load(_dir, train: false);
        Assert.Equal(5, train.Count);
        Assert.Equal(3, test.Count);
        var s = train.Read(4);
        Assert.Equal((1, 28, 28, 4), (s.Channels, s.Height, s.Width, s.Label));
        var expected = Pixels(5, 784).AsSpan(4 * 784, 784);
        for (int i = 0; i < 784; i++) Assert.Equal(expected[i] / 255f, s.Pixels[i]);
        Assert.Equal("Ankle boot", train.Classes[9]);
    }

    [Fact]
    public void TruncatedIdxNamesTheFileAndTheOffset()
    {
        Idx.Write(P("x-images-idx3-ubyte"), Pixels(4, 16), 4, 4, 4);
        var bytes = File.ReadAllBytes(P("x-images-idx3-ubyte"));
        File.WriteAllBytes(P("cut"), bytes[..40]);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(P("cut")));
        Assert.Contains(P("cut"), e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("offset 16", e.Message);  // the data starts after 4 + 3*4 header bytes
        Assert.Contains("64 bytes", e.Message);
    }

    [Fact]
    public void TruncatedGzipIdxNamesTheFileAndTheOffset()
    {
        Idx.Write(P("x.gz"), Pixels(50, 784), 50, 28, 28);
        var bytes = File.ReadAllBytes(P("x.gz"));
        File.WriteAllBytes(P("cut.gz"), bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(P("cut.gz")));
        Assert.Contains(P("cut.gz"), e.Message);
        Assert.Matches("(truncated at byte offset \\d+ of the decompressed data|corrupt gzip data near byte offset \\d+)", e.Message);
    }

    [Fact]
    public void CorruptGzipIdxIsAnErrorNotACrash()
    {
        Idx.Write(P("x.gz"), Pixels(50, 784), 50, 28, 28);
        var bytes = File.ReadAllBytes(P("x.gz"));
        for (int i = 20; i < 60; i++) bytes[i] ^= 0x5A;
        File.WriteAllBytes(P("bad.gz"), bytes);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(P("bad.gz")));
        Assert.Contains(P("bad.gz"), e.Message);
        Assert.Contains("byte offset", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 1, 0, 8, 1, 0, 0, 0, 1, 7 }, "not an idx file")]
    [InlineData(new byte[] { 0, 0, 0x0D, 1, 0, 0, 0, 1, 7 }, "element type 0x0d at byte offset 2")]
    [InlineData(new byte[] { 0, 0, 8, 9, 0, 0, 0, 1, 7 }, "rank 9 at byte offset 3")]
    [InlineData(new byte[] { 0, 0, 8, 1, 0xFF, 0xFF, 0xFF, 0xFF }, "negative dimension -1 at byte offset 4")]
    [InlineData(new byte[] { 0, 0, 8, 3, 0x7F, 0, 0, 0, 0x7F, 0, 0, 0, 0, 0, 0, 1 }, "exceed 2^31 elements")]
    public void MalformedIdxHeadersAreRejectedBeforeAllocating(byte[] content, string message)
    {
        File.WriteAllBytes(P("bad"), content);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(P("bad")));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void LabelCountMustMatchImageCount()
    {
        Idx.Write(P("i"), Pixels(3, 4), 3, 2, 2);
        Idx.Write(P("l"), [0, 1], 2);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Load(P("i"), P("l")));
        Assert.Contains("2 labels for the 3 images", e.Message);
    }

    [Fact]
    public void MissingFashionMnistFolderSaysHowToInstall()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => FashionMnist.Load(P("nowhere"), train: true));
        Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
        var f = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(_dir, train: true));
        Assert.Contains("train-images-idx3-ubyte", f.Message);
    }

    [Fact]
    public void EmbeddedSampleIsBalancedRealData()
    {
        var train = FashionMnist.LoadSample(train: true);
        var test = FashionMnist.LoadSample(train: false);
        Assert.Equal(3000, train.Count);
        Assert.Equal(1000, test.Count);
        for (int c = 0; c < 10; c++)
        {
            Assert.Equal(300, train.Labels.ToArray().Count(l => l == c));
            Assert.Equal(100, test.Labels.ToArray().Count(l => l == c));
        }
        // Real images: mean pixel near the full set's 0.286, and images differ from each other.
        double mean = Enumerable.Range(0, train.Count).Average(i => train.Read(i).Pixels.Average());
        Assert.InRange(mean, 0.25, 0.32);
        Assert.False(train.Read(0).Pixels.SequenceEqual(train.Read(1).Pixels));
    }

    private void WriteCifar10(int perFile, Func<int, int> label)
    {
        for (int f = 1; f <= 5; f++) WriteCifarFile(P($"data_batch_{f}.bin"), perFile, 1, label);
        WriteCifarFile(P("test_batch.bin"), perFile, 1, label);
    }

    private static void WriteCifarFile(string path, int n, int labelBytes, Func<int, int> label)
    {
        using var s = File.Create(path);
        for (int i = 0; i < n; i++)
        {
            for (int b = 0; b < labelBytes; b++) s.WriteByte((byte)label(i));
            var img = new byte[3072];
            for (int j = 0; j < img.Length; j++) img[j] = (byte)((i + j) % 256);
            s.Write(img);
        }
    }

    [Fact]
    public void Cifar10BinaryLoads()
    {
        WriteCifar10(2, i => i + 3);
        File.WriteAllLines(P("batches.meta.txt"), ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck", ""]);
        var train = Cifar.Load(_dir, train: true);
        Assert.Equal(10, train.Count);
        Assert.Equal("cat", train.Classes[train.Read(0).Label]);
        var s = train.Read(1);
        Assert.Equal((3, 32, 32), (s.Channels, s.Height, s.Width));
        Assert.Equal(1 / 255f, s.Pixels[0]);           // image 1, red plane, pixel 0
        Assert.Equal((1 + 1024) % 256 / 255f, s.Pixels[1024]);  // green plane starts at byte 1024
    }

    [Fact]
    public void TruncatedCifarNamesTheFileAndTheOffset()
    {
        WriteCifar10(2, _ => 1);
        var b = File.ReadAllBytes(P("data_batch_3.bin"));
        File.WriteAllBytes(P("data_batch_3.bin"), b[..5000]);
        var e = Assert.Throws<InvalidDataException>(() => Cifar.Load(_dir, train: true));
        Assert.Contains("data_batch_3.bin", e.Message);
        Assert.Contains("byte offset 3073", e.Message);
    }

    [Fact]
    public void Cifar100LabelsOutOfRangeAreReported()
    {
        WriteCifarFile(P("train.bin"), 2, 2, _ => 150);
        var e = Assert.Throws<InvalidDataException>(() => Cifar.Load(P("train.bin"), train: true, cifar100: true));
        Assert.Contains("train.bin: label 150 at byte offset 0", e.Message);
    }

    [Fact]
    public void GzipOfIdxWrittenByIdxWriteIsStandardGzip()
    {
        Idx.Write(P("a.gz"), [1, 2, 3], 3);
        using var gz = new GZipStream(File.OpenRead(P("a.gz")), CompressionMode.Decompress);
        var all = new MemoryStream();
        gz.CopyTo(all);
        Assert.Equal(new byte[] { 0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3 }, all.ToArray());
    }
}
