using System.Buffers.Binary;
using ResNetSharp.Imaging;
using ResNetSharp.IO;
using ResNetSharp.Models;
using SkiaSharp;

namespace ResNetSharp.Serve.Tests.Support;

/// <summary>A temporary directory removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "resnet-serve-tests-" + Guid.NewGuid().ToString("N")));
    public string Path { get; }
    public string File(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}

/// <summary>Small images made here, encoded with Skia: known pixels in, files out.</summary>
public static class Images
{
    /// <summary>RGBA pixels of a seeded noise image (alpha 255).</summary>
    public static byte[] Noise(int width, int height, int seed)
    {
        var rng = new Random(seed);
        var px = new byte[width * height * 4];
        rng.NextBytes(px);
        for (int i = 3; i < px.Length; i += 4) px[i] = 255;
        return px;
    }

    public static byte[] Solid(int width, int height, byte r, byte g, byte b)
    {
        var px = new byte[width * height * 4];
        for (int i = 0; i < px.Length; i += 4) { px[i] = r; px[i + 1] = g; px[i + 2] = b; px[i + 3] = 255; }
        return px;
    }

    public static byte[] Encode(byte[] rgba, int width, int height, SKEncodedImageFormat format, int quality = 100)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(format, quality) ?? throw new InvalidOperationException($"Skia could not encode {format}");
        return data.ToArray();
    }

    public static string Write(string path, byte[] rgba, int width, int height, SKEncodedImageFormat? format = null)
    {
        format ??= Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jpg" or ".jpeg" => SKEncodedImageFormat.Jpeg,
            ".webp" => SKEncodedImageFormat.Webp,
            _ => SKEncodedImageFormat.Png,
        };
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Encode(rgba, width, height, format.Value));
        return path;
    }

    /// <summary>
    /// A valid PNG whose header declares <paramref name="width"/> x <paramref name="height"/> but whose data is a few
    /// bytes: what a decompression bomb looks like before anything is decoded.
    /// </summary>
    public static byte[] PngHeaderOnly(int width, int height)
    {
        using var m = new MemoryStream();
        m.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
        Chunk(m, "IHDR", ihdr);
        Chunk(m, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]); // an empty zlib stream
        Chunk(m, "IEND", []);
        return m.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> b4 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b4, data.Length);
        s.Write(b4);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(b4, Crc32(typed));
        s.Write(b4);
    }

    private static uint Crc32(byte[] bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}

/// <summary>Random-init models saved with metadata, and direct (library) results to compare the tools with.</summary>
public static class TestModels
{
    public static readonly string[] Labels = [.. KnownLabels.FashionMnist];

    /// <summary>A resnet20 for 1-channel 28x28 input with Fashion-MNIST labels and preprocessing, saved to <paramref name="path"/>.</summary>
    public static string SaveFashionModel(string path, int seed = 1)
    {
        var m = ResNets.Create("resnet20", new ResNetOptions { NumClasses = 10, InChannels = 1, Seed = seed });
        ModelFile.Save(m, ModelMetadata.For(m, Labels, Preprocessing.FashionMnist), path);
        return path;
    }

    public static ResNetImageModel Load(string path)
    {
        var (m, meta) = ModelFile.Load(path);
        return new ResNetImageModel(m, meta);
    }

    /// <summary>The model's logits (or features) for one image file, through our own decoder and preprocessor.</summary>
    public static float[] Direct(IImageModel model, string imagePath, bool features = false) => Direct(model, File.ReadAllBytes(imagePath), features);

    public static float[] Direct(IImageModel model, byte[] encoded, bool features = false)
    {
        var pre = new ImagePreprocessor(model.Metadata.Preprocess!);
        var x = pre.Batch([pre.Preprocess(ImageDecoder.Decode(encoded, "test image"))]);
        return (features ? model.Features(x) : model.Logits(x)).Span.ToArray();
    }

    public static int ArgMax(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
