using ResNetSharp.Models;

namespace ResNetSharp.IO;

/// <summary>
/// The native model format: a safetensors file holding the torchvision-named state dict, with the
/// <see cref="ModelMetadata"/> as JSON under "__metadata__"/"resnetsharp". A bare torchvision state dict (no metadata)
/// loads too when the architecture is named; class and input-channel counts are then read off the weights.
/// </summary>
public static class ModelFile
{
    public const string MetadataKey = "resnetsharp";

    /// <summary>Writes weights and metadata atomically (temporary file, then rename).</summary>
    public static void Save(ResNet<float> model, ModelMetadata metadata, string path) =>
        SafeTensors.Write(path, StateDict.From(model), new Dictionary<string, string> { [MetadataKey] = metadata.ToJson() });

    /// <summary>The file's model metadata, or null for a bare state dict.</summary>
    public static ModelMetadata? ReadMetadata(string path)
    {
        using var stream = File.OpenRead(path);
        var header = SafeTensors.ReadHeader(stream, path);
        return header.Metadata.TryGetValue(MetadataKey, out var json) ? ModelMetadata.FromJson(json, path) : null;
    }

    /// <summary>
    /// Loads a model file. <paramref name="architecture"/> is required for a bare state dict and, when given for a file
    /// with metadata, must agree with it.
    /// </summary>
    public static (ResNet<float> Model, ModelMetadata Metadata) Load(string path, string? architecture = null)
    {
        using var stream = File.OpenRead(path);
        var header = SafeTensors.ReadHeader(stream, path);
        stream.Close();
        ModelMetadata metadata;
        if (header.Metadata.TryGetValue(MetadataKey, out var json))
        {
            metadata = ModelMetadata.FromJson(json, path);
            if (architecture is not null && architecture != metadata.Architecture)
                throw new InvalidDataException($"{path}: the file holds a {metadata.Architecture}, not a {architecture}");
        }
        else
        {
            if (architecture is null)
                throw new InvalidDataException($"{path}: a bare state dict without ResNetSharp metadata; name its architecture (--arch)");
            metadata = InferMetadata(header, architecture, path);
        }
        var model = ResNets.Create(metadata.Architecture, metadata.ToOptions());
        StateDict.Load(model, path);
        return (model, metadata);
    }

    private static ModelMetadata InferMetadata(SafeTensors.Header header, string architecture, string path)
    {
        var byName = header.Entries.ToDictionary(e => e.Name);
        if (!byName.TryGetValue("fc.weight", out var fc) || fc.Shape.Length != 2)
            throw new InvalidDataException($"{path}: no 2-d fc.weight, so this is not a {architecture} state dict");
        if (!byName.TryGetValue("conv1.weight", out var stem) || stem.Shape.Length != 4)
            throw new InvalidDataException($"{path}: no 4-d conv1.weight, so this is not a {architecture} state dict");
        bool cifar = ResNets.IsCifar(architecture);
        return new ModelMetadata
        {
            Architecture = architecture,
            NumClasses = fc.Shape[0],
            InChannels = stem.Shape[1],
            SmallInputStem = !cifar && stem.Shape[2] == 3,
            Preprocess = cifar ? null : stem.Shape[1] == 3 ? Preprocessing.ImageNet : null,
        };
    }
}
