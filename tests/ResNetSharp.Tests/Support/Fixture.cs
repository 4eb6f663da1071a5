using ResNetSharp.IO;
using ResNetSharp.Tensors;

namespace ResNetSharp.Tests.Support;

/// <summary>A golden file recorded from PyTorch by tools/golden/make_golden.py.</summary>
public sealed class Fixture
{
    private readonly SafeTensors.Contents _contents;

    private Fixture(string name, SafeTensors.Contents contents) { Name = name; _contents = contents; }

    public string Name { get; }
    public IReadOnlyDictionary<string, string> Metadata => _contents.Metadata;
    public IEnumerable<string> Names => _contents.Tensors.Keys;

    public static Fixture Load(string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "golden", name + ".safetensors");
        Assert.True(File.Exists(path), $"golden fixture {path} is missing; run tools/golden/make_golden.py");
        return new Fixture(name, SafeTensors.Read(path));
    }

    public SafeTensor Raw(string key) =>
        _contents.Tensors.TryGetValue(key, out var t) ? t : throw new KeyNotFoundException($"{Name}: no tensor '{key}'");

    public Tensor<float> Float(string key)
    {
        var t = Raw(key);
        return Tensor<float>.FromArray(t.ToFloat32(), t.Shape);
    }

    public Tensor<double> Double(string key)
    {
        var t = Raw(key);
        return Tensor<double>.FromArray(t.ToFloat64(), t.Shape);  // F64 fixtures keep their precision
    }

    public int[] Ints(string key) => Raw(key).ToInt64().Select(v => checked((int)v)).ToArray();
}

public static class Compare
{
    /// <summary>
    /// Asserts max|actual − expected| ≤ tolerance · max(1e-6, max|expected|): a tolerance relative to the scale of the
    /// whole output, the form the issue states (1e-4 for forward passes, 1e-3 for gradients).
    /// </summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        double scale = 1e-6, maxDiff = 0;
        int worst = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double d = Math.Abs((double)expected[i] - actual[i]);
            if (!(d <= maxDiff)) { maxDiff = d; worst = i; }
        }
        Assert.True(maxDiff <= tolerance * scale,
            $"{what}: max |diff| {maxDiff:G4} at index {worst} (expected {(worst >= 0 ? expected[worst] : 0)}, got {(worst >= 0 ? actual[worst] : 0)}) exceeds {tolerance:G2} x scale {scale:G4}");
    }

    public static void Close(Tensor<float> expected, Tensor<float> actual, double tolerance, string what)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.Shape), $"{what}: shape {actual} but expected {expected}");
        Close(expected.Span, actual.Span, tolerance, what);
    }

    public const double Forward = 1e-4;
    public const double Gradient = 1e-3;
}
