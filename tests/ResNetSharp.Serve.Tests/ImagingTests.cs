using ResNetSharp.Imaging;
using ResNetSharp.Models;
using ResNetSharp.Serve.Tests.Support;
using SkiaSharp;

namespace ResNetSharp.Serve.Tests;

public class DecoderTests
{
    [Theory]
    [InlineData(SKEncodedImageFormat.Png, 0)]
    [InlineData(SKEncodedImageFormat.Jpeg, 12)]
    [InlineData(SKEncodedImageFormat.Webp, 12)]
    public void Decodes_formats_to_the_encoded_pixels(SKEncodedImageFormat format, int tolerance)
    {
        // A smooth image so that lossy codecs stay close; PNG must be exact.
        int w = 23, h = 17;
        var px = new byte[w * h * 4];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int o = (y * w + x) * 4;
                px[o] = (byte)(x * 10); px[o + 1] = (byte)(y * 12); px[o + 2] = (byte)(128 + x - y); px[o + 3] = 255;
            }
        var img = ImageDecoder.Decode(Images.Encode(px, w, h, format), "test");
        Assert.Equal((w, h), (img.Width, img.Height));
        int worst = 0;
        for (int i = 0; i < px.Length; i++) if (i % 4 != 3) worst = Math.Max(worst, Math.Abs(px[i] - img.Rgba[i]));
        Assert.True(worst <= tolerance, $"{format}: largest pixel difference {worst} > {tolerance}");
    }

    [Fact]
    public void A_truncated_jpeg_is_an_error_naming_the_file()
    {
        using var dir = new TempDir();
        var full = Images.Encode(Images.Noise(64, 64, 3), 64, 64, SKEncodedImageFormat.Jpeg, 90);
        var cut = full[..(full.Length / 2)];
        // What we guard against: Skia's convenience decoder returns the truncated image without complaint.
        using (var silently = SKBitmap.Decode(cut)) Assert.NotNull(silently);
        string path = dir.File("cut.jpg");
        File.WriteAllBytes(path, cut);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.DecodeFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Random_bytes_and_empty_files_are_errors_naming_the_file()
    {
        using var dir = new TempDir();
        var bytes = new byte[4096];
        new Random(5).NextBytes(bytes);
        string path = dir.File("noise.png");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.DecodeFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not an image", e.Message);
        string empty = dir.File("empty.jpg");
        File.WriteAllBytes(empty, []);
        Assert.Contains(empty, Assert.Throws<ImageDecodeException>(() => ImageDecoder.DecodeFile(empty)).Message);
        Assert.Contains("missing.png", Assert.Throws<ImageDecodeException>(() => ImageDecoder.DecodeFile(dir.File("missing.png"))).Message);
    }

    [Fact]
    public void Header_dimensions_over_the_pixel_limit_are_refused_before_decoding()
    {
        // 100000 x 100000 RGBA would be 40 GB: refusing it must come from the header alone.
        var bomb = Images.PngHeaderOnly(100_000, 100_000);
        Assert.Equal((100_000, 100_000), ImageDecoder.PeekSize(bomb));
        var e = Assert.Throws<ImageTooLargeException>(() => ImageDecoder.Decode(bomb, "bomb.png"));
        Assert.Contains("bomb.png", e.Message);
        Assert.Contains("100000x100000", e.Message);
        // The limit is the caller's: a small real image over a small limit is refused the same way, under it decodes.
        var small = Images.Encode(Images.Noise(40, 30, 1), 40, 30, SKEncodedImageFormat.Png);
        Assert.Throws<ImageTooLargeException>(() => ImageDecoder.Decode(small, "small", maxPixels: 40 * 30 - 1));
        Assert.Equal(40, ImageDecoder.Decode(small, "small", maxPixels: 40 * 30).Width);
    }
}

public class PreprocessorTests
{
    private static DecodedImage Image(byte[] rgba, int w, int h) => new(rgba, w, h);

    [Fact]
    public void Normalises_each_channel_with_scale_mean_and_std()
    {
        int w = 4, h = 6;
        var px = Images.Noise(w, h, 7);
        var p = new Preprocessing { Height = h, Width = w, Channels = 3, Mean = [0.1f, 0.2f, 0.3f], Std = [0.5f, 0.6f, 0.7f] };
        // Through a PNG file, so decoding is part of the check.
        var decoded = ImageDecoder.Decode(Images.Encode(px, w, h, SKEncodedImageFormat.Png), "t");
        var chw = new ImagePreprocessor(p).Preprocess(decoded);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float expected = (px[(y * w + x) * 4 + c] / 255f - p.Mean[c]) / p.Std[c];
                    Assert.True(Math.Abs(expected - chw[(c * h + y) * w + x]) <= 1e-5f, $"c{c} y{y} x{x}");
                }
    }

    [Fact]
    public void Bgr_swaps_red_and_blue_and_grayscale_is_itu601_luma()
    {
        var px = Images.Solid(2, 2, 200, 100, 50);
        var bgr = new ImagePreprocessor(new Preprocessing { Height = 2, Width = 2, Bgr = true }).Preprocess(Image(px, 2, 2));
        Assert.Equal(50 / 255f, bgr[0], 6);
        Assert.Equal(100 / 255f, bgr[4], 6);
        Assert.Equal(200 / 255f, bgr[8], 6);
        var gray = new ImagePreprocessor(new Preprocessing { Height = 2, Width = 2, Channels = 1, Mean = [0.5f], Std = [0.25f] }).Preprocess(Image(px, 2, 2));
        float luma = (200 * 0.299f + 100 * 0.587f + 50 * 0.114f) / 255f;
        Assert.All(gray, v => Assert.Equal((luma - 0.5f) / 0.25f, v, 5));
    }

    [Theory]
    [InlineData(10, 8, 4, 4, 3, 2)]   // offsets (10-4)/2 = 3 and (8-4)/2 = 2
    [InlineData(7, 8, 4, 4, 2, 2)]    // (7-4)/2 = 1.5 rounds to even, 2, as torchvision's round()
    public void Centre_crop_takes_the_middle_as_torchvision(int w, int h, int cw, int ch, int left, int top)
    {
        var px = Images.Noise(w, h, 11);
        // ResizeShorter equal to the shorter side: no resampling, so the crop is exact.
        var p = new Preprocessing { ResizeShorter = Math.Min(w, h), Height = ch, Width = cw };
        var chw = new ImagePreprocessor(p).Preprocess(Image(px, w, h));
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++)
                Assert.Equal(px[((y + top) * w + x + left) * 4 + 1] / 255f, chw[(ch + y) * cw + x], 6);
    }

    [Fact]
    public void Resize_keeps_the_aspect_ratio_and_a_constant_image_constant()
    {
        var r = ImagePreprocessor.Resize(Image(Images.Solid(50, 30, 90, 160, 30), 50, 30), 26, 16);
        Assert.Equal((26, 16), (r.Width, r.Height));
        for (int i = 0; i < r.Rgba.Length; i += 4)
            Assert.True(Math.Abs(r.Rgba[i] - 90) <= 1 && Math.Abs(r.Rgba[i + 1] - 160) <= 1 && Math.Abs(r.Rgba[i + 2] - 30) <= 1, $"pixel {i / 4}");
        // Shorter side 30 -> 16, longer 50 -> int(16 * 50 / 30) = 26, then a 16x16 centre crop of the constant.
        var chw = new ImagePreprocessor(new Preprocessing { ResizeShorter = 16, Height = 16, Width = 16 }).Preprocess(Image(Images.Solid(50, 30, 90, 160, 30), 50, 30));
        Assert.All(chw.AsSpan(0, 256).ToArray(), v => Assert.Equal(90 / 255f, v, 2));
    }

    [Fact]
    public void Downscaling_a_gradient_keeps_it_ordered()
    {
        int w = 64, h = 8;
        var px = new byte[w * h * 4];
        for (int i = 0; i < w * h; i++) { byte v = (byte)(i % w * 4); px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = v; px[4 * i + 3] = 255; }
        var r = ImagePreprocessor.Resize(Image(px, w, h), 16, 2);
        for (int x = 1; x < 16; x++) Assert.True(r.Rgba[x * 4] > r.Rgba[(x - 1) * 4], $"column {x}");
    }
}

public class ImageFolderDatasetTests
{
    private static readonly (string Class, byte R, byte G, byte B)[] Colours = [("cat", 200, 10, 10), ("ant", 10, 200, 10), ("bee", 10, 10, 200)];

    private static TempDir MakeFolder()
    {
        var dir = new TempDir();
        foreach (var (cls, r, g, b) in Colours)
        {
            Images.Write(dir.File(cls, "a.png"), Images.Solid(6 + cls.Length, 5, r, g, b), 6 + cls.Length, 5);
            Images.Write(dir.File(cls, "b.webp"), Images.Solid(4, 4, r, g, b), 4, 4);
        }
        File.WriteAllText(dir.File("cat", "notes.txt"), "not an image");
        return dir;
    }

    [Fact]
    public void Classes_are_sorted_folder_names_and_pixels_are_unit_chw()
    {
        using var dir = MakeFolder();
        var ds = new ImageFolderDataset(dir.Path);
        Assert.Equal(["ant", "bee", "cat"], ds.Classes);
        Assert.Equal(6, ds.Count);
        Assert.Equal(3, ds.Channels);
        for (int i = 0; i < ds.Count; i++)
        {
            var s = ds.Read(i);
            var (cls, r, g, b) = Colours.Single(c => c.Class == ds.Classes[s.Label]);
            Assert.Contains(Path.DirectorySeparatorChar + cls + Path.DirectorySeparatorChar, ds.PathOf(i));
            Assert.Equal(3 * s.Height * s.Width, s.Pixels.Length);
            int plane = s.Height * s.Width;
            // PNG exact; WebP (lossy) close.
            Assert.Equal(r / 255f, s.Pixels[0], 1);
            Assert.Equal(g / 255f, s.Pixels[plane], 1);
            Assert.Equal(b / 255f, s.Pixels[2 * plane], 1);
            Assert.All(s.Pixels, v => Assert.InRange(v, 0f, 1f));
        }
        Assert.Equal((5, 9), (ds.Read(4).Height, ds.Read(4).Width)); // cat/a.png at its own size
    }

    [Fact]
    public void Resize_option_and_grayscale()
    {
        using var dir = MakeFolder();
        var ds = new ImageFolderDataset(dir.Path, channels: 1, resize: (3, 5));
        var s = ds.Read(0); // ant/a.png
        Assert.Equal((1, 3, 5, 15), (s.Channels, s.Height, s.Width, s.Pixels.Length));
        Assert.Equal((10 * 0.299f + 200 * 0.587f + 10 * 0.114f) / 255f, s.Pixels[7], 2);
    }

    [Fact]
    public void Reads_from_many_threads_equal_sequential_reads()
    {
        using var dir = MakeFolder();
        var ds = new ImageFolderDataset(dir.Path);
        var expected = Enumerable.Range(0, ds.Count).Select(ds.Read).ToArray();
        var got = new Data.ImageSample[ds.Count * 8];
        Parallel.For(0, got.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => got[i] = ds.Read(i % ds.Count));
        for (int i = 0; i < got.Length; i++)
        {
            Assert.Equal(expected[i % ds.Count].Label, got[i].Label);
            Assert.Equal(expected[i % ds.Count].Pixels, got[i].Pixels);
        }
    }

    [Fact]
    public void Corrupt_and_truncated_files_fail_on_read_naming_the_file()
    {
        using var dir = MakeFolder();
        var jpeg = Images.Encode(Images.Noise(32, 32, 1), 32, 32, SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(dir.File("bee", "c_truncated.jpg"), jpeg[..(jpeg.Length / 3)]);
        File.WriteAllBytes(dir.File("cat", "c_garbage.png"), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        var ds = new ImageFolderDataset(dir.Path);
        Assert.Equal(8, ds.Count);
        var bad = Enumerable.Range(0, ds.Count).Where(i => ds.PathOf(i).Contains("c_")).ToArray();
        Assert.Equal(2, bad.Length);
        foreach (var i in bad) Assert.Contains(ds.PathOf(i), Assert.Throws<ImageDecodeException>(() => ds.Read(i)).Message);
    }

    [Fact]
    public void Folders_without_classes_or_images_are_errors()
    {
        using var dir = new TempDir();
        Assert.Throws<DirectoryNotFoundException>(() => new ImageFolderDataset(dir.File("nope")));
        Assert.Contains("no class subfolders", Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(dir.Path)).Message);
        Directory.CreateDirectory(dir.File("empty"));
        Assert.Contains("no image files", Assert.Throws<InvalidDataException>(() => new ImageFolderDataset(dir.Path)).Message);
    }
}

public class LabelTests
{
    private sealed class FakeModel(ModelMetadata metadata, bool classifier = true) : IImageModel
    {
        public ModelMetadata Metadata => metadata;
        public bool HasClassifier => classifier;
        public int FeatureSize => 8;
        public Tensors.Tensor<float> Logits(Tensors.Tensor<float> batch) => throw new NotSupportedException();
        public Tensors.Tensor<float> Features(Tensors.Tensor<float> batch) => throw new NotSupportedException();
    }

    /// <summary>Records compare arrays by reference; compare the values.</summary>
    private static void AssertSame(Preprocessing expected, Preprocessing actual) =>
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(expected), System.Text.Json.JsonSerializer.Serialize(actual));

    [Fact]
    public void ImageNet_labels_come_from_torchvision_in_class_order()
    {
        var names = KnownLabels.ImageNet1k;
        Assert.Equal(1000, names.Count);
        Assert.Equal("tench", names[0]);
        Assert.Equal("goldfish", names[1]);
        Assert.Equal("toilet tissue", names[999]);
        Assert.Equal(1000, names.Distinct().Count());
    }

    [Fact]
    public void A_model_without_metadata_gets_imagenet_labels_and_preprocessing_only_when_imagenet_shaped()
    {
        var bare = new FakeModel(new ModelMetadata { Architecture = "resnet18", NumClasses = 1000, InChannels = 3 });
        var r = ModelInputs.Resolve(bare, "bare");
        Assert.Same(KnownLabels.ImageNet1k, r.Labels);
        AssertSame(Preprocessing.ImageNet, r.Preprocessing);

        var featurizer = new FakeModel(new ModelMetadata { Architecture = "resnet18", NumClasses = 1, InChannels = 3 }, classifier: false);
        AssertSame(Preprocessing.ImageNet, ModelInputs.Resolve(featurizer, "f").Preprocessing);

        var ten = new FakeModel(new ModelMetadata { Architecture = "resnet20", NumClasses = 10, InChannels = 3 });
        Assert.Contains("no preprocessing", Assert.Throws<InvalidDataException>(() => ModelInputs.Resolve(ten, "ten")).Message);
        var withPre = ModelInputs.Resolve(ten, "ten", preprocessOverride: new Preprocessing { Height = 32, Width = 32 });
        Assert.Equal("class 3", withPre.Labels[3]);

        var own = new FakeModel(ModelMetadata.For(ResNets.Create("resnet20", new ResNetOptions { InChannels = 1 }), TestModels.Labels, Preprocessing.FashionMnist));
        var o = ModelInputs.Resolve(own, "own");
        Assert.Equal("Ankle boot", o.Labels[9]);
        AssertSame(Preprocessing.FashionMnist, o.Preprocessing);
        // Flags win over metadata, and must fit the model.
        Assert.Equal("x", ModelInputs.Resolve(own, "own", labelsOverride: Enumerable.Repeat("x", 10).ToArray()).Labels[0]);
        Assert.Throws<InvalidDataException>(() => ModelInputs.Resolve(own, "own", labelsOverride: ["a", "b"]));
        Assert.Throws<InvalidDataException>(() => ModelInputs.Resolve(own, "own", preprocessOverride: Preprocessing.ImageNet));
    }

    [Fact]
    public void TopK_is_sorted_with_softmax_probabilities()
    {
        float[] logits = [1f, 3f, 2f, 3f, -1f];
        var top = Classification.TopK(logits, ["a", "b", "c", "d", "e"], 3);
        Assert.Equal([1, 3, 2], top.Select(t => t.Index));
        Assert.Equal(["b", "d", "c"], top.Select(t => t.Label));
        double sum = logits.Sum(v => Math.Exp(v));
        Assert.Equal(Math.Exp(3) / sum, top[0].Probability, 6);
        Assert.Equal(5, Classification.TopK(logits, [], 50).Length);
    }
}
