using System.Text.Json;
using ResNetSharp.IO;
using ResNetSharp.Models;

namespace ResNetSharp.Imaging;

/// <summary>
/// Embeddings of a set of images for nearest-neighbour search: a safetensors file with one float32 tensor
/// "embeddings" [N, F] (raw global-average-pooled features, row i = image i) and, under "__metadata__"/"resnetsharp_index",
/// JSON naming the format, the model file, its architecture and the image paths. Written atomically.
/// </summary>
public sealed class EmbeddingIndex
{
    public const string Format = "resnetsharp-index/1";
    public const string MetadataKey = "resnetsharp_index";
    public const string TensorName = "embeddings";

    private sealed record Header(string Format, string Model, string Architecture, int FeatureSize, string[] Paths, Preprocessing? Preprocess, string? PreprocessGraph = null);
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public EmbeddingIndex(string model, string architecture, IReadOnlyList<string> paths, float[] embeddings, int featureSize, Preprocessing? preprocess = null,
        string? preprocessGraph = null)
    {
        if (featureSize <= 0) throw new ArgumentException($"feature size must be positive, got {featureSize}");
        if (embeddings.Length != (long)paths.Count * featureSize)
            throw new ArgumentException($"{embeddings.Length} values for {paths.Count} images of {featureSize} features");
        Model = model; Architecture = architecture; Paths = paths; Embeddings = embeddings; FeatureSize = featureSize; Preprocess = preprocess;
        PreprocessGraph = preprocessGraph;
    }

    /// <summary>The model file the embeddings came from (as given to embed, made absolute).</summary>
    public string Model { get; }
    public string Architecture { get; }
    public IReadOnlyList<string> Paths { get; }
    /// <summary>[Count, FeatureSize] row-major.</summary>
    public float[] Embeddings { get; }
    public int FeatureSize { get; }
    /// <summary>The preprocessing the images went through, so that queries go through the same.</summary>
    public Preprocessing? Preprocess { get; }
    /// <summary>The --preprocess file the model was loaded with (an ONNX graph run before an ONNX model), made absolute.</summary>
    public string? PreprocessGraph { get; }
    public int Count => Paths.Count;
    public ReadOnlySpan<float> Row(int i) => Embeddings.AsSpan(i * FeatureSize, FeatureSize);

    public void Save(string path)
    {
        var header = new Header(Format, Model, Architecture, FeatureSize, [.. Paths], Preprocess, PreprocessGraph);
        SafeTensors.Write(path, [new(TensorName, SafeTensor.FromFloat32(Embeddings, Count, FeatureSize))],
            new Dictionary<string, string> { [MetadataKey] = JsonSerializer.Serialize(header, Json) });
    }

    public static EmbeddingIndex Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such index file");
        SafeTensors.Contents contents;
        try { contents = SafeTensors.Read(path); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or JsonException)
        {
            throw new InvalidDataException($"{path}: not an embedding index ({e.Message})");
        }
        if (!contents.Metadata.TryGetValue(MetadataKey, out var json))
            throw new InvalidDataException($"{path}: not an embedding index (no {MetadataKey} metadata; make one with 'resnet embed')");
        Header? h;
        try { h = JsonSerializer.Deserialize<Header>(json, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: index metadata is not valid JSON ({e.Message})"); }
        if (h is null || h.Format != Format) throw new InvalidDataException($"{path}: index format '{h?.Format}', expected '{Format}'");
        if (h.Paths is null || h.Model is null || h.Architecture is null) throw new InvalidDataException($"{path}: index metadata lacks paths, model or architecture");
        if (!contents.Tensors.TryGetValue(TensorName, out var t) || t.DType != "F32" || t.Shape.Length != 2)
            throw new InvalidDataException($"{path}: no 2-d float32 '{TensorName}' tensor");
        if (t.Shape[0] != h.Paths.Length || t.Shape[1] != h.FeatureSize)
            throw new InvalidDataException($"{path}: embeddings are [{t.Shape[0]}, {t.Shape[1]}] but the metadata lists {h.Paths.Length} images of {h.FeatureSize} features");
        try { h.Preprocess?.Validate(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        var values = t.ToFloat32();
        if (values.Any(v => !float.IsFinite(v))) throw new InvalidDataException($"{path}: embeddings hold NaN or infinite values");
        return new EmbeddingIndex(h.Model, h.Architecture, h.Paths, values, h.FeatureSize, h.Preprocess, h.PreprocessGraph);
    }

    /// <summary>The <paramref name="k"/> rows most cosine-similar to <paramref name="query"/>, best first (ties: lower row first).</summary>
    public (int Row, string Path, double Cosine)[] Nearest(ReadOnlySpan<float> query, int k)
    {
        if (query.Length != FeatureSize) throw new ArgumentException($"query has {query.Length} features, the index {FeatureSize}");
        var scores = new double[Count];
        for (int i = 0; i < Count; i++) scores[i] = Classification.Cosine(query, Row(i));
        return [.. Enumerable.Range(0, Count).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(Math.Max(k, 0)).Select(i => (i, Paths[i], scores[i]))];
    }
}
