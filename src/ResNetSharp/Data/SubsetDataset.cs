namespace ResNetSharp.Data;

/// <summary>The images of another data set at the given indices (a train/validation split without copying).</summary>
public sealed class SubsetDataset : IDataset
{
    private readonly IDataset _inner;
    private readonly int[] _indices;

    public SubsetDataset(IDataset inner, int[] indices, string? source = null)
    {
        foreach (int i in indices)
            if ((uint)i >= (uint)inner.Count) throw new ArgumentOutOfRangeException(nameof(indices), i, $"{inner.Source} has {inner.Count} images");
        _inner = inner; _indices = indices;
        Source = source ?? $"{inner.Source} (subset of {indices.Length})";
    }

    /// <summary>A seeded split: the first data set holds about <paramref name="fraction"/> of the images, the second the rest.</summary>
    public static (SubsetDataset First, SubsetDataset Others) Split(IDataset data, double fraction, int seed)
    {
        if (data.Count < 2) throw new ArgumentException($"{data.Source} has {data.Count} images, too few to split");
        var order = SplitMix.Permutation(data.Count, SplitMix.For(seed, -2, 0x5B117));
        int n = Math.Clamp((int)Math.Round(data.Count * fraction), 1, data.Count - 1);
        int[] a = order[..n], b = order[n..];
        Array.Sort(a); Array.Sort(b);
        return (new SubsetDataset(data, a, $"{data.Source} ({n} of {data.Count}, seed {seed})"),
                new SubsetDataset(data, b, $"{data.Source} (the other {data.Count - n}, seed {seed})"));
    }

    public int Count => _indices.Length;
    public IReadOnlyList<string> Classes => _inner.Classes;
    public int Channels => _inner.Channels;
    public string Source { get; }
    public ImageSample Read(int index) => _inner.Read(_indices[index]);
}
