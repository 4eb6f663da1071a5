namespace ResNetSharp.Data;

/// <summary>Equal-sized 8-bit images held in memory (idx and CIFAR files), NCHW bytes plus labels.</summary>
public sealed class InMemoryDataset : IDataset
{
    private readonly byte[] _pixels;
    private readonly int[] _labels;

    public InMemoryDataset(byte[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classes, string source)
    {
        long per = (long)channels * height * width;
        if (per <= 0 || per * labels.Length != pixels.Length)
            throw new ArgumentException($"{source}: {pixels.Length} pixel bytes for {labels.Length} images of {channels}x{height}x{width}");
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classes.Count)
                throw new InvalidDataException($"{source}: label {labels[i]} of image {i} is outside 0..{classes.Count - 1}");
        _pixels = pixels; _labels = labels;
        Channels = channels; Height = height; Width = width; Classes = classes; Source = source;
    }

    /// <summary>The same images under another source name.</summary>
    public InMemoryDataset(InMemoryDataset other, string source)
        : this(other._pixels, other._labels, other.Channels, other.Height, other.Width, other.Classes, source) { }

    /// <summary>The same images with other class names (at least as many as the labels need).</summary>
    public InMemoryDataset WithClasses(IReadOnlyList<string> classes) => new(_pixels, _labels, Channels, Height, Width, classes, Source);

    public int Count => _labels.Length;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> Classes { get; }
    public string Source { get; }
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>Raw bytes of image <paramref name="index"/>, CHW.</summary>
    public ReadOnlySpan<byte> RawPixels(int index)
    {
        int per = Channels * Height * Width;
        return _pixels.AsSpan(index * per, per);
    }

    public ImageSample Read(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"{Source} has {Count} images");
        var raw = RawPixels(index);
        var f = new float[raw.Length];
        for (int i = 0; i < raw.Length; i++) f[i] = raw[i] / 255f;
        return new ImageSample(f, Channels, Height, Width, _labels[index]);
    }

    /// <summary>The images at <paramref name="indices"/> as a new data set.</summary>
    public InMemoryDataset Subset(IReadOnlyList<int> indices, string? source = null)
    {
        int per = Channels * Height * Width;
        var pixels = new byte[(long)indices.Count * per];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            RawPixels(indices[i]).CopyTo(pixels.AsSpan(i * per, per));
            labels[i] = _labels[indices[i]];
        }
        return new InMemoryDataset(pixels, labels, Channels, Height, Width, Classes, source ?? $"{Source} (subset of {indices.Count})");
    }
}
