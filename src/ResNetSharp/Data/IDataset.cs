namespace ResNetSharp.Data;

/// <summary>One image as float pixels in [0, 1], CHW, with its class index.</summary>
public sealed record ImageSample(float[] Pixels, int Channels, int Height, int Width, int Label);

/// <summary>
/// A labelled image collection with random access. Images may differ in size (image folders); the transforms of
/// the data pipeline bring them to the model's input size. Read must be safe to call from several threads at once.
/// </summary>
public interface IDataset
{
    int Count { get; }
    /// <summary>Class names, index = label.</summary>
    IReadOnlyList<string> Classes { get; }
    /// <summary>Channels of every image (1 or 3).</summary>
    int Channels { get; }
    /// <summary>Where the data came from, for messages and metadata.</summary>
    string Source { get; }
    ImageSample Read(int index);
}
