using System.CommandLine;
using System.Globalization;
using ResNetSharp.Imaging;
using ResNetSharp.Models;

namespace ResNetSharp.Cli;

/// <summary>
/// The options predict, embed, similar and serve share: the model, and flags that override the labels and the
/// preprocessing found in its metadata (or the ImageNet defaults of a model without metadata).
/// </summary>
internal sealed class InferenceOptions(bool modelRequired = true)
{
    public Option<string?> Model { get; } = new("--model", "-m") { Description = "Model file: .safetensors with ResNetSharp metadata, a bare state dict with --arch, or .onnx", Required = modelRequired };
    public Option<string?> Arch { get; } = new("--arch", "-a") { Description = "Architecture of a bare state dict without metadata" };
    public Option<string?> PreprocessFile { get; } = new("--preprocess") { Description = "A .json preprocessing (snake_case keys as in the metadata) replacing the model's, or a preprocessing ONNX graph run before an ONNX model" };
    public Option<string?> LabelsFile { get; } = new("--labels") { Description = "Text file of class names, one per line, replacing the model's" };
    public Option<int?> Resize { get; } = new("--resize") { Description = "Resize the shorter side to this before the centre crop (0: resize straight to --size)" };
    public Option<string?> Size { get; } = new("--size") { Description = "Model input HxW (the centre crop)" };
    public Option<string?> Mean { get; } = new("--mean") { Description = "Per-channel mean, comma-separated, in units of pixel/255" };
    public Option<string?> Std { get; } = new("--std") { Description = "Per-channel std, comma-separated, in units of pixel/255" };
    public Option<bool> Bgr { get; } = new("--bgr") { Description = "Feed channels in BGR order" };

    public Command AddTo(Command command, params Option[] extra)
    {
        foreach (var o in new Option[] { Model, Arch, PreprocessFile, LabelsFile, Resize, Size, Mean, Std, Bgr }.Concat(extra)) command.Options.Add(o);
        return command;
    }

    public IImageModel LoadModel(ParseResult pr, string? modelPath = null, string? defaultPreprocess = null)
    {
        string path = modelPath ?? pr.GetValue(Model) ?? throw new CliException("--model is required");
        string? arch = pr.GetValue(Arch);
        if (arch is not null && !ResNets.Architectures.Contains(arch))
            throw new CliException($"unknown architecture '{arch}'; valid: {string.Join(", ", ResNets.Architectures)}");
        return ModelLoading.Load(path, arch, pr.GetValue(PreprocessFile) ?? defaultPreprocess);
    }

    /// <summary>Labels and preprocessing for <paramref name="model"/>: flags, then metadata, then the ImageNet defaults.</summary>
    public ModelInputs Resolve(ParseResult pr, IImageModel model, string source, Preprocessing? fallback = null)
    {
        IReadOnlyList<string>? labels = null;
        if (pr.GetValue(LabelsFile) is { } lf)
        {
            if (!File.Exists(lf)) throw new CliException($"--labels {lf}: no such file", ExitCodes.Failure);
            labels = File.ReadAllLines(lf).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        }
        var baseline = fallback ?? ModelInputs.DefaultPreprocessing(model);
        Preprocessing? over = null;
        int? resize = pr.GetValue(Resize);
        string? size = pr.GetValue(Size), mean = pr.GetValue(Mean), std = pr.GetValue(Std);
        bool bgr = pr.GetValue(Bgr);
        if (resize is not null || size is not null || mean is not null || std is not null || bgr)
        {
            int channels = model.Metadata.InChannels;
            if (baseline is null && size is null)
                throw new CliException($"{source} has no preprocessing in its metadata; give at least --size HxW (and --mean/--std)");
            var p = baseline ?? new Preprocessing { Channels = channels, Mean = new float[channels], Std = Enumerable.Repeat(1f, channels).ToArray() };
            if (resize is { } r)
            {
                if (r < 0) throw new CliException($"--resize must be 0 or positive, got {r}");
                p = p with { ResizeShorter = r == 0 ? null : r };
            }
            if (size is not null)
            {
                var parts = size.Split('x', 'X');
                if (parts.Length != 2 || !int.TryParse(parts[0], out int h) || !int.TryParse(parts[1], out int w) || h <= 0 || w <= 0)
                    throw new CliException($"--size '{size}' is not HxW, e.g. 224x224");
                p = p with { Height = h, Width = w };
            }
            if (mean is not null) p = p with { Mean = Floats(mean, "--mean", channels) };
            if (std is not null) p = p with { Std = Floats(std, "--std", channels) };
            if (bgr) p = p with { Bgr = true };
            try { p.Validate(); }
            catch (InvalidDataException e) { throw new CliException(e.Message); }
            over = p;
        }
        else if (fallback is not null) over = fallback;
        return ModelInputs.Resolve(model, source, labels, over);
    }

    private static float[] Floats(string text, string flag, int channels)
    {
        var parts = text.Split(',');
        var values = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                throw new CliException($"{flag} '{text}' is not a comma-separated list of numbers");
        if (values.Length != channels) throw new CliException($"{flag} needs {channels} value(s) for a {channels}-channel model, got {values.Length}");
        return values;
    }
}
