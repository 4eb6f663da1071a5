using ResNetSharp.Tensors;

namespace ResNetSharp.Models;

/// <summary>
/// A model that turns preprocessed NCHW batches into class scores and embeddings, whatever it was loaded from
/// (native safetensors, an ONNX graph). Not thread-safe: outputs are owned by the model until its next call.
/// </summary>
public interface IImageModel
{
    ModelMetadata Metadata { get; }
    /// <summary>False for feature extractors without a classifier (the ONNX ResNet-18 featurizer).</summary>
    bool HasClassifier { get; }
    /// <summary>Length of the embedding <see cref="Features"/> returns per image.</summary>
    int FeatureSize { get; }
    /// <summary>[N, classes] logits.</summary>
    Tensor<float> Logits(Tensor<float> batch);
    /// <summary>[N, FeatureSize] global-average-pooled features (the input of the classifier).</summary>
    Tensor<float> Features(Tensor<float> batch);
}

/// <summary>A native ResNet in evaluation mode behind <see cref="IImageModel"/>.</summary>
public sealed class ResNetImageModel : IImageModel
{
    private readonly ResNet<float> _model;

    public ResNetImageModel(ResNet<float> model, ModelMetadata metadata)
    {
        _model = model;
        _model.Eval();
        Metadata = metadata;
    }

    public ResNet<float> Model => _model;
    public ModelMetadata Metadata { get; }
    public bool HasClassifier => true;
    public int FeatureSize => _model.Fc.InFeatures;
    // The wrapped model may have been switched to training mode since (a trainer evaluating between epochs):
    // evaluating in training mode would use batch statistics and overwrite the BN running statistics.
    public Tensor<float> Logits(Tensor<float> batch) { EnsureEval(); return _model.Forward(batch); }
    public Tensor<float> Features(Tensor<float> batch) { EnsureEval(); return _model.ForwardFeatures(batch); }

    private void EnsureEval() { if (_model.IsTraining) _model.Eval(); }
}
