using ResNetSharp.Data;

namespace ResNetSharp.Imaging;

/// <summary>
/// A folder of images with one subfolder per class, as torchvision's ImageFolder: the sorted (ordinal) subfolder
/// names are the classes, index = label, and every JPEG, PNG, WebP (GIF, BMP) file below a class folder is one
/// sample. <see cref="Read"/> decodes the file each time and returns pixels in [0, 1], CHW, at the file's own size
/// or, when <paramref name="resize"/> is given, resized to it. Safe to call from several threads: nothing is shared
/// but the immutable file list.
/// </summary>
public sealed class ImageFolderDataset : IDataset
{
    private readonly (string Path, int Label)[] _samples;
    private readonly (int Height, int Width)? _resize;
    private readonly long _maxPixels;

    /// <param name="root">The folder holding one subfolder per class.</param>
    /// <param name="channels">3 (RGB) or 1 (ITU-R 601 luma).</param>
    /// <param name="resize">Resize every image to this size on read (Mitchell cubic); null keeps the native size.</param>
    /// <param name="maxPixels">Images whose header declares more pixels are an error.</param>
    public ImageFolderDataset(string root, int channels = 3, (int Height, int Width)? resize = null, long maxPixels = ImageDecoder.DefaultMaxPixels)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"channels must be 1 or 3, got {channels}");
        if (resize is { } r && (r.Height <= 0 || r.Width <= 0)) throw new ArgumentException($"resize {r.Height}x{r.Width} must be positive");
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: no such directory");
        var classDirs = Directory.GetDirectories(root).OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal).ToArray();
        if (classDirs.Length == 0) throw new InvalidDataException($"{root}: no class subfolders (expected ROOT/CLASS/IMAGE files)");
        var samples = new List<(string, int)>();
        for (int label = 0; label < classDirs.Length; label++)
        {
            var files = Directory.EnumerateFiles(classDirs[label], "*", SearchOption.AllDirectories).Where(ImageDecoder.IsImageFile).ToArray();
            Array.Sort(files, StringComparer.Ordinal);
            samples.AddRange(files.Select(f => (f, label)));
        }
        if (samples.Count == 0)
            throw new InvalidDataException($"{root}: no image files ({string.Join(", ", ImageDecoder.Extensions.Order())}) in its class subfolders");
        _samples = [.. samples];
        Classes = classDirs.Select(d => Path.GetFileName(d)!).ToArray();
        Channels = channels;
        Source = Path.GetFullPath(root);
        _resize = resize;
        _maxPixels = maxPixels;
    }

    public int Count => _samples.Length;
    public IReadOnlyList<string> Classes { get; }
    public int Channels { get; }
    public string Source { get; }

    /// <summary>The file behind sample <paramref name="index"/>.</summary>
    public string PathOf(int index) => _samples[index].Path;

    public ImageSample Read(int index)
    {
        if ((uint)index >= (uint)_samples.Length) throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is not in 0..{_samples.Length - 1}");
        var (path, label) = _samples[index];
        var image = ImageDecoder.DecodeFile(path, _maxPixels);
        if (_resize is { } r && (r.Width != image.Width || r.Height != image.Height)) image = ImagePreprocessor.Resize(image, r.Width, r.Height);
        return new ImageSample(ToUnitChw(image, Channels), Channels, image.Height, image.Width, label);
    }

    /// <summary>RGBA bytes to CHW floats in [0, 1]: RGB, or ITU-R 601 luma for one channel.</summary>
    public static float[] ToUnitChw(DecodedImage image, int channels)
    {
        int plane = image.Width * image.Height;
        var chw = new float[channels * plane];
        var s = image.Rgba;
        const float k = 1f / 255f;
        for (int i = 0; i < plane; i++)
        {
            float r = s[4 * i], g = s[4 * i + 1], b = s[4 * i + 2];
            if (channels == 1) chw[i] = (r * 0.299f + g * 0.587f + b * 0.114f) * k;
            else { chw[i] = r * k; chw[plane + i] = g * k; chw[2 * plane + i] = b * k; }
        }
        return chw;
    }
}
