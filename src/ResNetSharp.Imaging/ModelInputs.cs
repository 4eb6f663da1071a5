using ResNetSharp.Models;

namespace ResNetSharp.Imaging;

/// <summary>
/// The class names and preprocessing to use with a model: flags first, then the model's metadata, then, for a model
/// without them that looks like an ImageNet classifier (3 input channels, 1000 outputs) or an ImageNet featurizer
/// (3 input channels, no classifier), torchvision's ImageNet preprocessing and ImageNet-1k class names.
/// </summary>
public sealed record ModelInputs(IReadOnlyList<string> Labels, Preprocessing Preprocessing, string LabelSource, string PreprocessingSource)
{
    /// <summary>The model's own preprocessing, else torchvision's ImageNet one when the model is ImageNet-shaped, else null.</summary>
    public static Preprocessing? DefaultPreprocessing(IImageModel model)
    {
        var m = model.Metadata;
        if (m.Preprocess is { } own) return own;
        bool imageNetShaped = m.InChannels == 3 && (!model.HasClassifier || m.NumClasses == 1000);
        return imageNetShaped ? Preprocessing.ImageNet : null;
    }

    public static ModelInputs Resolve(IImageModel model, string source, IReadOnlyList<string>? labelsOverride = null, Preprocessing? preprocessOverride = null)
    {
        var m = model.Metadata;
        IReadOnlyList<string> labels;
        string labelSource;
        if (labelsOverride is not null)
        {
            if (model.HasClassifier && labelsOverride.Count != m.NumClasses)
                throw new InvalidDataException($"{labelsOverride.Count} labels given for a model with {m.NumClasses} classes ({source})");
            (labels, labelSource) = (labelsOverride, "flag");
        }
        else if (m.Labels is { } own) (labels, labelSource) = (own, "metadata");
        else if (model.HasClassifier && m.InChannels == 3 && m.NumClasses == 1000) (labels, labelSource) = (KnownLabels.ImageNet1k, "ImageNet-1k (default for 3 channels, 1000 classes)");
        else (labels, labelSource) = (Enumerable.Range(0, Math.Max(m.NumClasses, 0)).Select(i => $"class {i}").ToArray(), "class indices (no labels in the model)");

        Preprocessing pre;
        string preSource;
        if (preprocessOverride is not null) (pre, preSource) = (preprocessOverride, "flag");
        else if (DefaultPreprocessing(model) is { } d) (pre, preSource) = (d, m.Preprocess is null ? "torchvision ImageNet (default for 3 channels)" : "metadata");
        else throw new InvalidDataException(
            $"{source}: the model has no preprocessing in its metadata and is not ImageNet-shaped ({m.InChannels} channels, {m.NumClasses} classes); give the input size and normalisation (--preprocess FILE or --size/--mean/--std)");
        pre.Validate();
        if (pre.Channels != m.InChannels)
            throw new InvalidDataException($"{source}: preprocessing gives {pre.Channels} channel(s) but the model takes {m.InChannels}");
        return new ModelInputs(labels, pre, labelSource, preSource);
    }
}

/// <summary>One class score: index, label, softmax probability and raw logit.</summary>
public sealed record ClassScore(int Rank, int Index, string Label, float Probability, float Logit);

public static class Classification
{
    /// <summary>
    /// The <paramref name="k"/> highest-scoring classes of one row of logits, best first (ties: lower index first),
    /// with softmax probabilities computed in double after subtracting the maximum.
    /// </summary>
    public static ClassScore[] TopK(ReadOnlySpan<float> logits, IReadOnlyList<string> labels, int k)
    {
        if (logits.IsEmpty) return [];
        float max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in logits) sum += Math.Exp(v - max);
        var order = Enumerable.Range(0, logits.Length).ToArray();
        var keys = logits.ToArray();
        Array.Sort(order, (a, b) => keys[b].CompareTo(keys[a]) is var c && c != 0 ? c : a.CompareTo(b));
        k = Math.Clamp(k, 1, logits.Length);
        var top = new ClassScore[k];
        for (int r = 0; r < k; r++)
        {
            int i = order[r];
            top[r] = new ClassScore(r + 1, i, i < labels.Count ? labels[i] : $"class {i}", (float)(Math.Exp(keys[i] - max) / sum), keys[i]);
        }
        return top;
    }

    /// <summary>Cosine similarity of two vectors (0 when either is zero).</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"vectors of length {a.Length} and {b.Length}");
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }
}
