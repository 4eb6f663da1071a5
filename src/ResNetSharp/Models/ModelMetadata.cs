using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNetSharp.Models;

/// <summary>
/// How raw pixels become the model's input: optional shorter-side resize, centre crop to the input size, channel
/// order, then (pixel * PixelScale - mean) / std per channel. Mean and std are in PixelScale units (ImageNet's
/// 0.485… with PixelScale 1/255).
/// </summary>
public sealed record Preprocessing
{
    /// <summary>Resize so that the shorter side has this length before the crop; null resizes straight to the crop.</summary>
    public int? ResizeShorter { get; init; }
    public int Height { get; init; }
    public int Width { get; init; }
    /// <summary>1 (grayscale: ITU-R 601 luma) or 3.</summary>
    public int Channels { get; init; } = 3;
    /// <summary>Feed BGR instead of RGB (CNTK and Caffe models).</summary>
    public bool Bgr { get; init; }
    public float PixelScale { get; init; } = 1f / 255f;
    public float[] Mean { get; init; } = [0f, 0f, 0f];
    public float[] Std { get; init; } = [1f, 1f, 1f];

    /// <summary>torchvision's ImageNet evaluation transform: resize 256, centre crop 224, ImageNet mean and std.</summary>
    public static Preprocessing ImageNet => new()
    {
        ResizeShorter = 256, Height = 224, Width = 224, Channels = 3,
        Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f],
    };

    /// <summary>Fashion-MNIST as our trainer normalises it: 28x28 grayscale, the training set's mean and std.</summary>
    public static Preprocessing FashionMnist => new()
    {
        Height = 28, Width = 28, Channels = 1, Mean = [0.2860f], Std = [0.3530f],
    };

    public void Validate()
    {
        if (Height <= 0 || Width <= 0 || Height > 8192 || Width > 8192)
            throw new InvalidDataException($"preprocessing: input size {Height}x{Width} is not in 1..8192");
        if (ResizeShorter is <= 0 or > 8192) throw new InvalidDataException($"preprocessing: resize_shorter {ResizeShorter} is not in 1..8192");
        if (Channels is not (1 or 3)) throw new InvalidDataException($"preprocessing: channels must be 1 or 3, got {Channels}");
        if (Mean.Length != Channels || Std.Length != Channels)
            throw new InvalidDataException($"preprocessing: mean and std need {Channels} values, got {Mean.Length} and {Std.Length}");
        if (Std.Any(s => !(s > 0) || !float.IsFinite(s)) || Mean.Any(m => !float.IsFinite(m)) || !(PixelScale > 0))
            throw new InvalidDataException("preprocessing: std and pixel_scale must be positive and finite, mean finite");
    }
}

/// <summary>
/// What a saved model needs besides its weights: the architecture and options to rebuild it, class labels and
/// preprocessing. Stored as JSON in the "__metadata__" of the model's safetensors file (key <see cref="IO.ModelFile.MetadataKey"/>).
/// </summary>
public sealed record ModelMetadata
{
    public const string CurrentFormat = "resnetsharp/1";

    public string Format { get; init; } = CurrentFormat;
    public required string Architecture { get; init; }
    public int NumClasses { get; init; }
    public int InChannels { get; init; } = 3;
    public bool SmallInputStem { get; init; }
    public bool StrideOnFirst1x1 { get; init; }
    public string[]? Labels { get; init; }
    public Preprocessing? Preprocess { get; init; }
    /// <summary>Where the weights came from (data set, epochs, accuracy …), free-form.</summary>
    public Dictionary<string, string>? Provenance { get; init; }

    public ResNetOptions ToOptions() => new()
    {
        NumClasses = NumClasses, InChannels = InChannels, SmallInputStem = SmallInputStem, StrideOnFirst1x1 = StrideOnFirst1x1,
    };

    public static ModelMetadata For(ResNet<float> model, string[]? labels = null, Preprocessing? preprocess = null) => new()
    {
        Architecture = model.Architecture,
        NumClasses = model.Fc.OutFeatures,
        InChannels = model.Options.InChannels,
        SmallInputStem = model.Options.SmallInputStem,
        StrideOnFirst1x1 = model.Options.StrideOnFirst1x1,
        Labels = labels,
        Preprocess = preprocess,
    };

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ModelMetadata FromJson(string json, string source)
    {
        ModelMetadata? m;
        try { m = JsonSerializer.Deserialize<ModelMetadata>(json, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: model metadata is not valid JSON ({e.Message})"); }
        if (m is null) throw new InvalidDataException($"{source}: model metadata is empty");
        if (m.Format != CurrentFormat) throw new InvalidDataException($"{source}: model metadata format '{m.Format}', expected '{CurrentFormat}'");
        if (m.NumClasses <= 0 || m.InChannels <= 0) throw new InvalidDataException($"{source}: model metadata needs positive num_classes and in_channels");
        if (m.Labels is not null && m.Labels.Length != m.NumClasses)
            throw new InvalidDataException($"{source}: {m.Labels.Length} labels for {m.NumClasses} classes");
        try { m.Preprocess?.Validate(); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{source}: {e.Message}"); }
        return m;
    }
}
