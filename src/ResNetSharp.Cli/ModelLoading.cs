using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Onnx;

namespace ResNetSharp.Cli;

/// <summary>Opens a model file of any supported kind behind <see cref="IImageModel"/>.</summary>
internal static class ModelLoading
{
    public enum Format { Onnx, SafeTensors }

    /// <summary>
    /// An ONNX file (optionally with a preprocessing graph run before it) becomes an <see cref="OnnxImageModel"/>; a
    /// safetensors file (native, with ResNetSharp metadata, or a bare torchvision state dict with
    /// <paramref name="architecture"/>) a <see cref="ResNetImageModel"/>. The format is read from the file's first bytes.
    /// </summary>
    public static IImageModel Load(string path, string? architecture, string? preprocessPath = null)
    {
        var format = Detect(path);
        if (preprocessPath is not null)
        {
            if (format != Format.Onnx) throw new CliException($"{path}: a preprocessing graph (--preprocess) goes with ONNX models only");
            if (!File.Exists(preprocessPath)) throw new CliException($"preprocessing graph '{preprocessPath}' does not exist", ExitCodes.Failure);
        }
        if (format == Format.Onnx)
        {
            var model = OnnxImageModel.Load(path, preprocessPath);
            if (architecture is not null && model.Metadata.Architecture != "onnx" && model.Metadata.Architecture != architecture)
                throw new CliException($"{path}: the file holds a {model.Metadata.Architecture}, not a {architecture}", ExitCodes.Failure);
            return model;
        }
        if (architecture is not null && !ResNets.Architectures.Contains(architecture))
            throw new CliException($"unknown architecture '{architecture}'; valid: {string.Join(", ", ResNets.Architectures)}");
        var (resnet, metadata) = LoadNative(path, architecture);
        return new ResNetImageModel(resnet, metadata);
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
