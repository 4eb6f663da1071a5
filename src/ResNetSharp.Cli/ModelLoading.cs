using System.Text.Json;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Onnx;

namespace ResNetSharp.Cli;

/// <summary>Opens a model file of any supported kind behind <see cref="IImageModel"/>.</summary>
internal static class ModelLoading
{
    public enum Format { Onnx, SafeTensors }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// An ONNX file becomes an <see cref="OnnxImageModel"/>; a safetensors file (native, with ResNetSharp metadata, or a
    /// bare torchvision state dict with <paramref name="architecture"/>) a <see cref="ResNetImageModel"/>. The format is
    /// read from the file's first bytes. <paramref name="preprocessPath"/> (--preprocess) is either a preprocessing
    /// ONNX graph run before an ONNX model (the featurizer's ResNetPreprocess.onnx), or a .json
    /// <see cref="Preprocessing"/> (snake_case keys, as in the metadata) that replaces the model's own.
    /// </summary>
    public static IImageModel Load(string path, string? architecture, string? preprocessPath = null)
    {
        var format = Detect(path);
        Preprocessing? replacement = null;
        if (preprocessPath is not null)
        {
            if (!File.Exists(preprocessPath)) throw new CliException($"--preprocess '{preprocessPath}' does not exist", ExitCodes.Failure);
            if (preprocessPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                replacement = ReadPreprocessing(preprocessPath);
                preprocessPath = null;
            }
            else if (format != Format.Onnx)
                throw new CliException($"{path}: a preprocessing graph (--preprocess) goes with ONNX models only; give a .json preprocessing instead");
        }
        IImageModel model;
        if (format == Format.Onnx)
        {
            var onnx = OnnxImageModel.Load(path, preprocessPath);
            if (architecture is not null && onnx.Metadata.Architecture != "onnx" && onnx.Metadata.Architecture != architecture)
                throw new CliException($"{path}: the file holds a {onnx.Metadata.Architecture}, not a {architecture}", ExitCodes.Failure);
            model = onnx;
        }
        else
        {
            if (architecture is not null && !ResNets.Architectures.Contains(architecture))
                throw new CliException($"unknown architecture '{architecture}'; valid: {string.Join(", ", ResNets.Architectures)}");
            var (resnet, metadata) = LoadNative(path, architecture);
            model = new ResNetImageModel(resnet, metadata);
        }
        return replacement is null ? model : new WithPreprocessing(model, replacement);
    }

    private static Preprocessing ReadPreprocessing(string path)
    {
        Preprocessing? p;
        try { p = JsonSerializer.Deserialize<Preprocessing>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a preprocessing JSON object ({e.Message})"); }
        if (p is null) throw new InvalidDataException($"{path}: empty preprocessing");
        try { p.Validate(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        return p;
    }

    /// <summary>A model whose metadata carries another preprocessing; everything else is the wrapped model's.</summary>
    private sealed class WithPreprocessing(IImageModel inner, Preprocessing preprocess) : IImageModel
    {
        public ModelMetadata Metadata { get; } = inner.Metadata with { Preprocess = preprocess };
        public bool HasClassifier => inner.HasClassifier;
        public int FeatureSize => inner.FeatureSize;
        public Tensors.Tensor<float> Logits(Tensors.Tensor<float> batch) => inner.Logits(batch);
        public Tensors.Tensor<float> Features(Tensors.Tensor<float> batch) => inner.Features(batch);
    }

    /// <summary><see cref="ModelFile.Load"/>, with every error naming the file (a state dict of another depth says which entries miss).</summary>
    public static (ResNet<float> Model, ModelMetadata Metadata) LoadNative(string path, string? architecture)
    {
        try { return ModelFile.Load(path, architecture); }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            string what = architecture is null ? "" : $" as a {architecture}";
            throw new InvalidDataException($"{path}: cannot load{what}: {e.Message}", e);
        }
    }

    /// <summary>
    /// safetensors begins with an 8-byte little-endian header length and then '{'; anything else is taken as ONNX
    /// protobuf (whose parser then says whether it is one). A missing or empty file is an error naming it.
    /// </summary>
    public static Format Detect(string path)
    {
        if (Directory.Exists(path)) throw new CliException($"model '{path}' is a directory, not a model file", ExitCodes.Failure);
        if (!File.Exists(path)) throw new CliException($"model file '{path}' does not exist", ExitCodes.Failure);
        Span<byte> head = stackalloc byte[9];
        using (var s = File.OpenRead(path))
        {
            int n = s.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (n == 0) throw new CliException($"model file '{path}' is empty", ExitCodes.Failure);
            if (n == head.Length && head[8] == (byte)'{') return Format.SafeTensors;
        }
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".safetensors") return Format.SafeTensors;  // the safetensors reader reports what is wrong with it
        return Format.Onnx;
    }
}
