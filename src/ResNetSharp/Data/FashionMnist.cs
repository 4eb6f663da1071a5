namespace ResNetSharp.Data;

/// <summary>
/// Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test images, 28x28 grayscale, 10 classes.
/// Read from a folder of the four idx files (Debian's dataset-fashion-mnist installs them), or from the sample
/// embedded in this library (the first 300 training and 100 test images of each class) so that demos run anywhere.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's dataset-fashion-mnist package puts the files.</summary>
    public const string InstalledDirectory = "/usr/share/datasets/fashion-mnist";
    public const string InstallHint = "install it with 'sudo apt-get install dataset-fashion-mnist'";

    public static readonly IReadOnlyList<string> Classes =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Mean and std of the training pixels in [0, 1], the normalisation the trainer applies.</summary>
    public const float Mean = 0.2860f, Std = 0.3530f;

    private static string Prefix(bool train) => train ? "train" : "t10k";

    /// <summary>True when the four idx files are in <paramref name="directory"/> (default: the Debian location).</summary>
    public static bool IsInstalled(string directory = InstalledDirectory) =>
        new[] { true, false }.All(t => FindFile(directory, $"{Prefix(t)}-images-idx3-ubyte") is not null
                                    && FindFile(directory, $"{Prefix(t)}-labels-idx1-ubyte") is not null);

    /// <summary>Loads one split from a folder holding the idx files (plain or .gz); other class names for generic MNIST-style data.</summary>
    public static InMemoryDataset Load(string directory, bool train, IReadOnlyList<string>? classes = null)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Fashion-MNIST folder {directory} does not exist ({InstallHint}, or pass a folder with the idx files)");
        string images = FindFile(directory, $"{Prefix(train)}-images-idx3-ubyte")
            ?? throw new FileNotFoundException($"{directory}: no {Prefix(train)}-images-idx3-ubyte[.gz] ({InstallHint})");
        string labels = FindFile(directory, $"{Prefix(train)}-labels-idx1-ubyte")
            ?? throw new FileNotFoundException($"{directory}: no {Prefix(train)}-labels-idx1-ubyte[.gz] ({InstallHint})");
        var ds = Idx.Load(images, labels, classes ?? Classes, $"Fashion-MNIST {(train ? "train" : "test")} ({directory})");
        if (ds.Height != 28 || ds.Width != 28) throw new InvalidDataException($"{images}: Fashion-MNIST images are 28x28, found {ds.Height}x{ds.Width}");
        return ds;
    }

    /// <summary>The embedded sample: 3,000 training or 1,000 test images of the real set, balanced over the classes.</summary>
    public static InMemoryDataset LoadSample(bool train)
    {
        var asm = typeof(FashionMnist).Assembly;
        Stream Open(string kind)
        {
            string name = $"{Prefix(train)}-{kind}.gz";
            return asm.GetManifestResourceStream($"ResNetSharp.Data.Samples.{name}")
                ?? throw new InvalidOperationException($"the embedded Fashion-MNIST sample {name} is missing from {asm.GetName().Name}");
        }
        using var images = Open("images-idx3-ubyte");
        using var labels = Open("labels-idx1-ubyte");
        string split = train ? "train" : "test";
        return Idx.Load(images, $"embedded {Prefix(train)}-images-idx3-ubyte.gz", labels, $"embedded {Prefix(train)}-labels-idx1-ubyte.gz",
            Classes, $"Fashion-MNIST {split} (embedded sample)");
    }

    /// <summary>The installed set when present, else the embedded sample; <paramref name="isSample"/> says which.</summary>
    public static InMemoryDataset LoadDefault(bool train, out bool isSample)
    {
        isSample = !IsInstalled();
        return isSample ? LoadSample(train) : Load(InstalledDirectory, train);
    }

    private static string? FindFile(string directory, string stem)
    {
        foreach (var name in new[] { stem, stem + ".gz", stem.Replace("-idx", ".idx"), stem.Replace("-idx", ".idx") + ".gz" })
        {
            string p = Path.Combine(directory, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
