using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx;

/// <summary>
/// An ONNX image model (a classifier or a featurizer) behind <see cref="IImageModel"/>, optionally with a preprocessing
/// graph run before it (the ResNet-18 featurizer's ResNetPreprocess.onnx: RGB → BGR and mean-image subtraction).
/// </summary>
/// <remarks>
/// Features are the input of the final Gemm/MatMul (the pooled, flattened features of a ResNet classifier), or, for a
/// graph without one, its output flattened to (N, features). A model whose declared batch dimension is 1 runs a batch
/// image by image, others in chunks of 32 images. Metadata: the ResNetSharp metadata stored in the file's
/// metadata_props when present; otherwise architecture "onnx", with torchvision's ImageNet preprocessing at the declared input size for three-channel models
/// and, when a preprocessing graph is chained in, raw 0..255 RGB pixels (PixelScale 1, mean 0, std 1), shorter side
/// resized to the input size and centre-cropped, as ML.NET feeds this featurizer.
/// </remarks>
public sealed class OnnxImageModel : IImageModel
{
    private readonly OnnxGraph _graph;
    private readonly OnnxGraph? _preprocess;
    private readonly string? _featureValue;
    private readonly string _logitsValue;
    private readonly bool _singleImage;
    private Tensor<float>? _logits, _features;

    private OnnxImageModel(OnnxGraph graph, OnnxGraph? preprocess)
    {
        _graph = graph;
        _preprocess = preprocess;
        if (graph.Inputs.Count != 1 || graph.Outputs.Count < 1)
            throw new InvalidDataException($"{graph.Source}: an image model needs one input, this graph has {graph.Inputs.Count}");
        var first = preprocess ?? graph;
        var shape = first.InputShape(first.Inputs[0]);
        if (shape is not null && shape.Length != 4)
            throw new InvalidDataException($"{first.Source}: input '{first.Inputs[0]}' has rank {shape.Length}; an image model takes (N, C, H, W)");
        if (preprocess is not null)
        {
            if (preprocess.Inputs.Count != 1 || preprocess.Outputs.Count != 1)
                throw new InvalidDataException($"{preprocess.Source}: a preprocessing graph needs one input and one output");
            var inner = graph.InputShape(graph.Inputs[0]);
            if (inner is not null && shape is not null && !inner.SequenceEqual(shape))
                throw new InvalidDataException($"{preprocess.Source}: its input shape does not match the model's ({graph.Source})");
        }
        _singleImage = shape is not null && shape[0] == 1 || (graph.InputShape(graph.Inputs[0]) is { } g && g.Length > 0 && g[0] == 1);
        InputShape = shape;

        _featureValue = FindClassifierInput(graph, out var classifier);
        // A classifier that ends in Softmax gives probabilities; Logits returns the scores before it.
        _logitsValue = graph.Producer(graph.Outputs[0]) is { OpType: "Softmax" } softmax ? softmax.Input[0] : graph.Outputs[0];
        HasClassifier = _featureValue is not null;
        if (classifier is { } c)
        {
            FeatureSize = c.InFeatures;
            NumClasses = c.OutFeatures;
        }
        Metadata = ReadMetadata();
        if (FeatureSize == 0)
        {
            // A featurizer: the size of its output per image, from the declared output shape or one run at the input size.
            var h = Metadata.Preprocess?.Height ?? shape?[2] ?? 224; var w = Metadata.Preprocess?.Width ?? shape?[3] ?? 224;
            int ch = shape?[1] ?? Metadata.InChannels;
            var probe = Features(new Tensor<float>(1, ch, h, w));
            FeatureSize = probe.Dim(1);
        }
    }

    /// <summary>Loads an ONNX model, with an optional preprocessing graph whose output feeds the model's input.</summary>
    public static OnnxImageModel Load(string path, string? preprocessPath = null) =>
        new(OnnxGraph.Load(path), preprocessPath is null ? null : OnnxGraph.Load(preprocessPath));

    public OnnxGraph Graph => _graph;
    public ModelMetadata Metadata { get; }
    public bool HasClassifier { get; }
    public int FeatureSize { get; private set; }
    public int NumClasses { get; }
    /// <summary>Declared input dimensions (null entries are symbolic), or null when the file does not say.</summary>
    public int?[]? InputShape { get; }

    public Tensor<float> Logits(Tensor<float> batch)
    {
        if (!HasClassifier)
            throw new InvalidOperationException($"{_graph.Source}: this model is a featurizer without a classifier; use Features");
        var y = RunBatched(batch, _logitsValue);
        if (y.Rank != 2) y = y.Reshape(y.Dim(0), y.Length / Math.Max(1, y.Dim(0)));
        return Keep(ref _logits, y);
    }

    public Tensor<float> Features(Tensor<float> batch)
    {
        var f = RunBatched(batch, _featureValue ?? _graph.Outputs[0]);
        int n = f.Dim(0);
        return Keep(ref _features, f.Reshape(n, n == 0 ? 0 : f.Length / n));
    }

    // Outputs are owned by the model until its next call, as IImageModel promises; here each call makes a new tensor.
    private static Tensor<float> Keep(ref Tensor<float>? slot, Tensor<float> t) => slot = t;

    /// <summary>Images per graph run: a batch is split so that no activation nears the per-tensor element cap.</summary>
    internal const int ChunkImages = 32;

    private Tensor<float> RunBatched(Tensor<float> batch, string value)
    {
        if (batch.Rank != 4) throw new ArgumentException($"{_graph.Source}: expected an (N, C, H, W) batch, got {Tensor<float>.ShapeString(batch.Shape)}");
        int chunk = _singleImage ? 1 : ChunkImages;
        if (batch.N <= chunk) return RunOne(batch, value);
        int per = batch.Length / batch.N;
        Tensor<float>? result = null;
        int outPer = 0;
        for (int i = 0; i < batch.N; i += chunk)
        {
            int n = Math.Min(chunk, batch.N - i);
            var part = Tensor<float>.FromArray(batch.Span.Slice(i * per, n * per), n, batch.C, batch.H, batch.W);
            var y = RunOne(part, value);
            if (result is null) { var shape = y.ShapeArray; shape[0] = batch.N; result = new Tensor<float>(shape); outPer = y.Length / n; }
            y.Span.CopyTo(result.Span.Slice(i * outPer, n * outPer));
        }
        return result!;
    }

    private Tensor<float> RunOne(Tensor<float> x, string value)
    {
        if (_preprocess is not null) x = _preprocess.Run(x);
        return _graph.Run(new Dictionary<string, Tensor<float>> { [_graph.Inputs[0]] = x }, [value])[value];
    }

    /// <summary>
    /// The value feeding the last Gemm or MatMul on the path to the first output (passing through Softmax, Identity,
    /// Flatten, Reshape and a bias Add): the pooled features of a classifier. Null for a featurizer.
    /// </summary>
    private static string? FindClassifierInput(OnnxGraph graph, out (int InFeatures, int OutFeatures)? classifier)
    {
        classifier = null;
        string value = graph.Outputs[0];
        for (int guard = 0; guard < 16; guard++)
        {
            var node = graph.Producer(value);
            if (node is null) return null;
            switch (node.OpType)
            {
                case "Softmax" or "Identity" or "Flatten" or "Reshape" or "Dropout":
                    value = node.Input[0];
                    continue;
                case "Add":
                    // MatMul + bias: follow the operand that is computed, not the constant bias.
                    value = graph.Constant(node.Input[0]) is null ? node.Input[0] : node.Input[1];
                    continue;
                case "Gemm" or "MatMul":
                {
                    var w = graph.Constant(node.Input[1]);
                    if (w is not { Shape.Length: 2 }) return null;
                    bool transB = node.OpType == "Gemm" && node.Attribute.Any(a => a.Name == "transB" && a.I != 0);
                    var s = w.Value.Shape;
                    classifier = transB ? (s[1], s[0]) : (s[0], s[1]);
                    return node.Input[0];
                }
                default:
                    return null;
            }
        }
        return null;
    }

    private ModelMetadata ReadMetadata()
    {
        if (_graph.MetadataProps.TryGetValue(ModelFile.MetadataKey, out var json))
            return ModelMetadata.FromJson(json, _graph.Source);
        var first = _preprocess ?? _graph;
        var shape = first.InputShape(first.Inputs[0]);
        int channels = shape?[1] ?? 3;
        int? h = shape?[2], w = shape?[3];
        Preprocessing? pre = null;
        if (_preprocess is not null)
        {
            int hh = h ?? 224, ww = w ?? 224;
            pre = new Preprocessing
            {
                ResizeShorter = Math.Min(hh, ww), Height = hh, Width = ww, Channels = channels,
                PixelScale = 1f, Mean = Enumerable.Repeat(0f, channels).ToArray(), Std = Enumerable.Repeat(1f, channels).ToArray(),
            };
        }
        else if (channels == 3)
        {
            var imageNet = Preprocessing.ImageNet;
            pre = h is { } hh && w is { } ww
                ? imageNet with { Height = hh, Width = ww, ResizeShorter = (int)Math.Round(Math.Min(hh, ww) * 256.0 / 224) }
                : imageNet;
        }
        return new ModelMetadata
        {
            Architecture = "onnx",
            NumClasses = NumClasses,
            InChannels = channels,
            Preprocess = pre,
            Provenance = new Dictionary<string, string> { ["onnx"] = Path.GetFileName(_graph.Source) },
        };
    }
}
