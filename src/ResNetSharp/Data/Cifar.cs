namespace ResNetSharp.Data;

/// <summary>
/// CIFAR-10 and CIFAR-100 in their binary versions: records of label byte(s) then 3072 bytes of 32x32 RGB, planar.
/// CIFAR-10 records have one label byte (data_batch_1..5.bin, test_batch.bin); CIFAR-100 two, coarse then fine
/// (train.bin, test.bin). Class names come from batches.meta.txt / fine_label_names.txt when present.
/// </summary>
public static class Cifar
{
    private const int ImageBytes = 3 * 32 * 32;

    /// <summary>Loads a split from a folder (cifar-10-batches-bin or cifar-100-binary) or from one .bin file.</summary>
    public static InMemoryDataset Load(string path, bool train, bool cifar100 = false, bool coarseLabels = false)
    {
        string[] files;
        string dir;
        if (File.Exists(path)) { files = [path]; dir = Path.GetDirectoryName(Path.GetFullPath(path))!; }
        else if (Directory.Exists(path))
        {
            dir = path;
            files = cifar100
                ? [Path.Combine(path, train ? "train.bin" : "test.bin")]
                : train ? [.. Enumerable.Range(1, 5).Select(i => Path.Combine(path, $"data_batch_{i}.bin"))] : [Path.Combine(path, "test_batch.bin")];
            foreach (var f in files)
                if (!File.Exists(f)) throw new FileNotFoundException($"{path}: no {Path.GetFileName(f)} (expected the binary version of CIFAR-{(cifar100 ? 100 : 10)})");
        }
        else throw new FileNotFoundException($"{path}: no such file or folder");

        int labelBytes = cifar100 ? 2 : 1, record = labelBytes + ImageBytes;
        int classCount = cifar100 ? (coarseLabels ? 20 : 100) : 10;
        long total = 0;
        foreach (var f in files)
        {
            long len = new FileInfo(f).Length;
            if (len == 0 || len % record != 0)
                throw new InvalidDataException($"{f}: {len} bytes is not a whole number of {record}-byte CIFAR-{(cifar100 ? 100 : 10)} records; " +
                    $"the last record is cut at byte offset {len - len % record}");
            total += len / record;
        }
        if (total * ImageBytes > int.MaxValue) throw new InvalidDataException($"{path}: {total} images are too many to hold in memory");

        var pixels = new byte[total * ImageBytes];
        var labels = new int[total];
        int n = 0;
        var buf = new byte[record];
        foreach (var f in files)
        {
            using var s = File.OpenRead(f);
            while (s.Position < s.Length)
            {
                s.ReadExactly(buf);
                labels[n] = cifar100 ? buf[coarseLabels ? 0 : 1] : buf[0];
                if (labels[n] >= classCount)
                    throw new InvalidDataException($"{f}: label {labels[n]} at byte offset {s.Position - record} is not below {classCount} " +
                        $"(is this CIFAR-{(cifar100 ? 10 : 100)}?)");
                buf.AsSpan(labelBytes).CopyTo(pixels.AsSpan(n * ImageBytes, ImageBytes));
                n++;
            }
        }
        var classes = ReadNames(dir, cifar100 ? (coarseLabels ? "coarse_label_names.txt" : "fine_label_names.txt") : "batches.meta.txt", classCount);
        return new InMemoryDataset(pixels, labels, 3, 32, 32, classes, $"CIFAR-{(cifar100 ? 100 : 10)} {(train ? "train" : "test")} ({path})");
    }

    private static string[] ReadNames(string dir, string file, int count)
    {
        string p = Path.Combine(dir, file);
        if (File.Exists(p))
        {
            var names = File.ReadAllLines(p).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (names.Length == count) return names;
        }
        return [.. Enumerable.Range(0, count).Select(i => i.ToString())];
    }
}
