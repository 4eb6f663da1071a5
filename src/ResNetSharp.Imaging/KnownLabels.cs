namespace ResNetSharp.Imaging;

/// <summary>Class names of the data sets our models are trained on.</summary>
public static class KnownLabels
{
    private static readonly Lazy<string[]> ImageNetNames = new(LoadImageNet);

    /// <summary>
    /// torchvision's ImageNet-1k class names (torchvision/models/_meta.py, _IMAGENET_CATEGORIES), extracted by
    /// tools/labels/imagenet_labels.py into an embedded resource.
    /// </summary>
    public static IReadOnlyList<string> ImageNet1k => ImageNetNames.Value;

    /// <summary>Fashion-MNIST's ten classes, label order.</summary>
    public static IReadOnlyList<string> FashionMnist { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private static string[] LoadImageNet()
    {
        using var stream = typeof(KnownLabels).Assembly.GetManifestResourceStream("ResNetSharp.Imaging.imagenet1k_labels.txt")
            ?? throw new InvalidOperationException("the ImageNet-1k label resource is missing from ResNetSharp.Imaging");
        using var reader = new StreamReader(stream);
        var names = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (names.Length != 1000) throw new InvalidOperationException($"the ImageNet-1k label resource has {names.Length} names, expected 1000");
        return names;
    }
}
