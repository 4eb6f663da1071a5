using SkiaSharp;

namespace ResNetSharp.Imaging;

/// <summary>An image that could not be decoded; the message names the source (file name or request). An IOException so that
/// callers treating bad files alike (the CLI) need no extra case.</summary>
public class ImageDecodeException(string message) : IOException(message);

/// <summary>An image whose header declares more pixels than allowed (a decompression bomb or just too big).</summary>
public sealed class ImageTooLargeException(string message) : ImageDecodeException(message);

/// <summary>Decoded pixels: RGBA, 8 bits per channel, unpremultiplied, rows top to bottom, no padding.</summary>
public sealed record DecodedImage(byte[] Rgba, int Width, int Height)
{
    public long PixelCount => (long)Width * Height;
}

/// <summary>
/// Decodes JPEG, PNG, WebP (and whatever else Skia's codecs read: GIF's first frame, BMP, ICO, WBMP) without
/// trusting the input: the header's dimensions are checked against a pixel limit before any pixel memory is
/// allocated, and a decode that does not complete is an error. <c>SKBitmap.Decode</c> would return a truncated
/// JPEG with its missing rows transparent black, so we decode through <see cref="SKCodec"/> and require
/// <see cref="SKCodecResult.Success"/>.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Default pixel limit: 50 megapixels (a 50 MP RGBA decode takes 200 MB).</summary>
    public const long DefaultMaxPixels = 50_000_000;

    public static DecodedImage DecodeFile(string path, long maxPixels = DefaultMaxPixels)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDecodeException($"{path}: cannot read ({e.Message})");
        }
        return Decode(bytes, path, maxPixels);
    }

    /// <summary>Decodes <paramref name="data"/>; <paramref name="source"/> names it in error messages.</summary>
    public static DecodedImage Decode(ReadOnlySpan<byte> data, string source, long maxPixels = DefaultMaxPixels)
    {
        if (data.IsEmpty) throw new ImageDecodeException($"{source}: empty, not an image");
        using var skData = SKData.CreateCopy(data);
        // The codec owns the stream and disposes it with itself.
        using var codec = SKCodec.Create(new SKMemoryStream(skData), out var createResult);
        if (codec is null)
            throw new ImageDecodeException($"{source}: not an image in a format we decode (JPEG, PNG, WebP, GIF, BMP) ({createResult})");
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageDecodeException($"{source}: header declares an empty image ({info.Width}x{info.Height})");
        long pixels = (long)info.Width * info.Height;
        if (pixels > maxPixels)
            throw new ImageTooLargeException($"{source}: {info.Width}x{info.Height} is {pixels:N0} pixels, over the limit of {maxPixels:N0}");
        var target = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[checked(pixels * 4)];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = rgba) result = codec.GetPixels(target, (IntPtr)p);
        }
        return result switch
        {
            SKCodecResult.Success => new DecodedImage(rgba, info.Width, info.Height),
            SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput =>
                throw new ImageDecodeException($"{source}: truncated or corrupt {codec.EncodedFormat} data ({result})"),
            _ => throw new ImageDecodeException($"{source}: cannot decode {codec.EncodedFormat} ({result})"),
        };
    }

    /// <summary>The header's dimensions without decoding; null when the bytes are not an image.</summary>
    public static (int Width, int Height)? PeekSize(ReadOnlySpan<byte> data)
    {
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData);
        return codec is null ? null : (codec.Info.Width, codec.Info.Height);
    }

    /// <summary>Extensions of the files that folder scans pick up.</summary>
    public static readonly IReadOnlySet<string> Extensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif" };

    public static bool IsImageFile(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>Image files under <paramref name="directory"/> (recursively), sorted by ordinal path.</summary>
    public static string[] FindImages(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: no such directory");
        var files = Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Where(IsImageFile).ToArray();
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }
}
