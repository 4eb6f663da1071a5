using System.Text.Json;
using ResNetSharp.IO;
using ResNetSharp.Models;

namespace ResNetSharp.Cli;

/// <summary>
/// Placeholder on the serve branch: loads native safetensors models only (ModelFile.Load → ResNetImageModel). The ONNX
/// branch's version, which also loads .onnx files, replaces this file at merge; the signature is the shared contract.
/// </summary>
internal static class ModelLoading
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Loads a model file. <paramref name="architecture"/> names the architecture of a bare state dict;
    /// <paramref name="preprocessPath"/> is a JSON <see cref="Preprocessing"/> (snake_case keys, as in the metadata) that
    /// replaces the model's own.
    /// </summary>
    public static IImageModel Load(string path, string? architecture, string? preprocessPath = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such model file");
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new CliException($"{path}: ONNX models are not supported by this build (native .safetensors only)", ExitCodes.Failure);
        var (model, metadata) = ModelFile.Load(path, architecture);
        if (preprocessPath is not null)
        {
            Preprocessing? p;
            try { p = JsonSerializer.Deserialize<Preprocessing>(File.ReadAllText(preprocessPath), Json); }
            catch (JsonException e) { throw new InvalidDataException($"{preprocessPath}: not a preprocessing JSON object ({e.Message})"); }
            if (p is null) throw new InvalidDataException($"{preprocessPath}: empty preprocessing");
            try { p.Validate(); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{preprocessPath}: {e.Message}"); }
            metadata = metadata with { Preprocess = p };
        }
        return new ResNetImageModel(model, metadata);
    }
}
