using ResNetSharp.Data;
using ResNetSharp.Imaging;
using ResNetSharp.Models;

namespace ResNetSharp.Cli;

/// <summary>
/// The data sets `--data` names:
/// <list type="bullet">
/// <item><c>fashion-mnist</c>: Debian's installed set, else the embedded sample (said on stderr);</item>
/// <item><c>fashion-mnist-sample</c>: the embedded sample; <c>fashion-mnist:DIR</c> or <c>idx:DIR</c>: the four idx files in DIR;</item>
/// <item><c>cifar10:DIR</c>, <c>cifar100:DIR</c>: the binary versions; <c>folder:DIR</c>: one subfolder per class
/// (DIR/train and DIR/test, or DIR/val, when present, else a seeded 90/10 split of DIR).</item>
/// </list>
/// </summary>
internal sealed record DataSpec(string Name, IDataset Train, IDataset Test, Preprocessing Preprocess, string Kind, bool IsSample)
{
    public const string Help = "Data set: fashion-mnist (installed, else the embedded sample), fashion-mnist-sample, fashion-mnist:DIR, idx:DIR, " +
                               "cifar10:DIR, cifar100:DIR, folder:DIR";

    public static DataSpec Parse(string spec, int imageSize = 224, int seed = 0, bool evaluationOnly = false)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon];
        string? path = colon < 0 ? null : spec[(colon + 1)..];
        if (path is { Length: 0 }) throw new CliException($"--data {spec}: the path after '{kind}:' is empty");
        try
        {
            switch (kind)
            {
                case "fashion-mnist" when path is null:
                    {
                        var train = FashionMnist.LoadDefault(train: true, out bool sample);
                        if (sample)
                            Console.Error.WriteLine($"resnet: Fashion-MNIST is not installed in {FashionMnist.InstalledDirectory} ({FashionMnist.InstallHint}); " +
                                $"using the embedded sample of {train.Count} training images");
                        var test = sample ? FashionMnist.LoadSample(train: false) : FashionMnist.Load(FashionMnist.InstalledDirectory, train: false);
                        return new DataSpec(spec, train, test, Preprocessing.FashionMnist, "fashion-mnist", sample);
                    }
                case "fashion-mnist-sample" when path is null:
                    return new DataSpec(spec, FashionMnist.LoadSample(true), FashionMnist.LoadSample(false), Preprocessing.FashionMnist, "fashion-mnist", true);
                case "fashion-mnist" or "idx":
                    {
                        if (path is null) throw new CliException($"--data {kind} needs a folder: {kind}:DIR");
                        var classes = kind == "idx" ? null : FashionMnist.Classes;
                        var train = FashionMnist.Load(path, train: true, classes);
                        var test = FashionMnist.Load(path, train: false, classes);
                        if (kind == "idx" && test.Classes.Count > train.Classes.Count) train = train.WithClasses(test.Classes);
                        else if (kind == "idx") test = test.WithClasses(train.Classes);
                        return new DataSpec(spec, train, test, kind == "idx" ? MeanStd(train) : Preprocessing.FashionMnist, kind, false);
                    }
                case "cifar10" or "cifar100":
                    {
                        if (path is null) throw new CliException($"--data {kind} needs a folder: {kind}:DIR (the binary version)");
                        bool c100 = kind == "cifar100";
                        var train = Cifar.Load(path, train: true, cifar100: c100);
                        var test = Cifar.Load(path, train: false, cifar100: c100);
                        var pre = new Preprocessing
                        {
                            Height = 32, Width = 32, Channels = 3,
                            Mean = c100 ? [0.5071f, 0.4865f, 0.4409f] : [0.4914f, 0.4822f, 0.4465f],
                            Std = c100 ? [0.2673f, 0.2564f, 0.2762f] : [0.2470f, 0.2435f, 0.2616f],
                        };
                        return new DataSpec(spec, train, test, pre, kind, false);
                    }
                case "folder":
                    {
                        if (path is null) throw new CliException("--data folder needs a folder: folder:DIR");
                        var (train, test) = LoadFolders(path, seed, evaluationOnly);
                        var pre = Preprocessing.ImageNet with { Height = imageSize, Width = imageSize, ResizeShorter = imageSize * 8 / 7, Channels = train.Channels };
                        if (train.Channels == 1) pre = pre with { Mean = [0.5f], Std = [0.25f] };
                        return new DataSpec(spec, train, test, pre, kind, false);
                    }
                default:
                    throw new CliException($"--data '{spec}' is not a data set. {Help}");
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            string fallback = kind is "fashion-mnist" or "idx"
                ? "; --data fashion-mnist takes the installed set, or the embedded sample when it is not installed" : "";
            throw new CliException($"--data {spec}: {e.Message}{fallback}", ExitCodes.Failure);
        }
    }

    /// <summary>
    /// DIR/train with DIR/test (or DIR/val) when both exist; else, for training, a seeded 90/10 split of DIR's class
    /// folders, and for evaluation alone all of DIR (a folder of labelled images to score).
    /// </summary>
    private static (IDataset Train, IDataset Test) LoadFolders(string dir, int seed, bool evaluationOnly)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such folder");
        string train = Path.Combine(dir, "train");
        string? test = new[] { "test", "val" }.Select(t => Path.Combine(dir, t)).FirstOrDefault(Directory.Exists);
        if (Directory.Exists(train) && test is not null)
        {
            var a = new ImageFolderDataset(train);
            var b = new ImageFolderDataset(test);
            if (!a.Classes.SequenceEqual(b.Classes))
                throw new CliException($"--data folder:{dir}: {train} and {test} have different class folders " +
                    $"({string.Join(", ", a.Classes)} vs {string.Join(", ", b.Classes)})", ExitCodes.Failure);
            return (a, b);
        }
        var all = new ImageFolderDataset(dir);
        if (evaluationOnly) return (all, all);
        var (first, rest) = SubsetDataset.Split(all, 0.9, seed);
        Console.Error.WriteLine($"resnet: {dir} has no train/ and test/ folders; training on a seeded 90% of its {all.Count} images, testing on the other {rest.Count}");
        return (first, rest);
    }

    /// <summary>Normalisation from the training images' own mean and std (generic idx data).</summary>
    private static Preprocessing MeanStd(InMemoryDataset d)
    {
        double sum = 0, sq = 0; long n = 0;
        for (int i = 0; i < d.Count; i++)
            foreach (var b in d.RawPixels(i)) { double v = b / 255.0; sum += v; sq += v * v; n++; }
        double mean = sum / n, std = Math.Sqrt(Math.Max(1e-12, sq / n - mean * mean));
        return new Preprocessing { Height = d.Height, Width = d.Width, Channels = 1, Mean = [(float)mean], Std = [(float)std] };
    }

    /// <summary>Training augmentation: random crop with padding and flips for small images, random-resized crops for photographs.</summary>
    public ITransform TrainTransform(bool augment)
    {
        var norm = Normalization(Preprocess);
        var steps = new List<ITransform>();
        if (Kind == "folder")
        {
            steps.Add(augment ? new RandomResizedCrop(Preprocess.Height, Preprocess.Width) : new Resize(Preprocess.ResizeShorter ?? Preprocess.Height));
            if (!augment) steps.Add(new CenterCrop(Preprocess.Height, Preprocess.Width));
            if (augment) steps.Add(new RandomHorizontalFlip());
        }
        else if (augment)
        {
            steps.Add(new RandomCrop(Preprocess.Height, Preprocess.Width, Kind == "cifar10" || Kind == "cifar100" ? 4 : 2));
            steps.Add(new RandomHorizontalFlip());
        }
        steps.Add(norm);
        return new Compose([.. steps]);
    }

    /// <summary>Evaluation: resize and centre crop where the images are not the input size, then normalise.</summary>
    public static ITransform EvalTransform(Preprocessing p, IDataset data)
    {
        var steps = new List<ITransform>();
        if (data is not InMemoryDataset m || m.Height != p.Height || m.Width != p.Width)
        {
            steps.Add(new Resize(p.ResizeShorter ?? Math.Max(p.Height, p.Width)));
            steps.Add(new CenterCrop(p.Height, p.Width));
        }
        steps.Add(Normalization(p));
        return new Compose([.. steps]);
    }

    /// <summary>The model's normalisation for pixels in [0, 1] (Preprocessing is in units of raw × PixelScale).</summary>
    public static Normalize Normalization(Preprocessing p)
    {
        float unit = 255f * p.PixelScale;
        return new Normalize([.. p.Mean.Select(m => m / unit)], [.. p.Std.Select(s => s / unit)]);
    }
}
