using System.Buffers.Binary;
using System.IO.Compression;

namespace ResNetSharp.Data;

/// <summary>
/// The idx format of MNIST and Fashion-MNIST (optionally gzipped): magic 0x0000 0x08 (unsigned bytes) with the
/// dimension count, big-endian int32 dimensions, then the data. Every size is checked against what the file holds.
/// </summary>
public static class Idx
{
    private const long MaxElements = 1L << 31;

    /// <summary>Reads an unsigned-byte idx file; errors name the file and the byte offset (in the decompressed data for .gz).</summary>
    public static (byte[] Data, int[] Dims) Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file");
        using var file = File.OpenRead(path);
        return Read(file, path);
    }

    /// <summary>Reads an idx file from a seekable stream; <paramref name="path"/> names it in errors.</summary>
    public static (byte[] Data, int[] Dims) Read(Stream file, string path)
    {
        bool gz = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using Stream stream = gz ? new GZipStream(file, CompressionMode.Decompress) : file;
        string where = gz ? "of the decompressed data" : "";
        long offset = 0;

        void Fill(Span<byte> buffer, string what)
        {
            int done = 0;
            try
            {
                while (done < buffer.Length)
                {
                    int n = stream.Read(buffer[done..]);
                    if (n == 0)
                        throw new InvalidDataException(
                            $"{path}: truncated at byte offset {offset + done} {where}: {what} needs {buffer.Length} bytes from offset {offset}".TrimEnd());
                    done += n;
                }
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}: corrupt gzip data near byte offset {file.Position} of the file ({e.Message})");
            }
            offset += done;
        }

        Span<byte> magic = stackalloc byte[4];
        Fill(magic, "the magic number");
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidDataException($"{path}: not an idx file (bytes 0-1 are {magic[0]:x2} {magic[1]:x2}, expected 00 00)");
        if (magic[2] != 0x08)
            throw new InvalidDataException($"{path}: idx element type 0x{magic[2]:x2} at byte offset 2 is not supported (only 0x08, unsigned byte)");
        int rank = magic[3];
        if (rank is < 1 or > 4) throw new InvalidDataException($"{path}: idx rank {rank} at byte offset 3 is not in 1..4");
        var dimBytes = new byte[4 * rank];
        Fill(dimBytes, "the dimensions");
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(dimBytes.AsSpan(4 * i));
            if (dims[i] < 0) throw new InvalidDataException($"{path}: negative dimension {dims[i]} at byte offset {4 + 4 * i}");
            count *= dims[i];
            if (count > MaxElements) throw new InvalidDataException($"{path}: dimensions {string.Join("x", dims.Take(i + 1))} exceed 2^31 elements");
        }
        if (!gz && file.Length - offset < count)
            throw new InvalidDataException($"{path}: truncated: the header declares {count} bytes of data from byte offset {offset}, the file has {file.Length - offset}");
        var data = new byte[count];
        Fill(data, "the data");
        return (data, dims);
    }

    /// <summary>An image file (N x H x W) and its label file (N) as one data set.</summary>
    public static InMemoryDataset Load(string imagesPath, string labelsPath, IReadOnlyList<string>? classes = null, string? source = null)
    {
        using var images = File.Exists(imagesPath) ? File.OpenRead(imagesPath) : throw new FileNotFoundException($"{imagesPath}: no such file");
        using var labels = File.Exists(labelsPath) ? File.OpenRead(labelsPath) : throw new FileNotFoundException($"{labelsPath}: no such file");
        return Load(images, imagesPath, labels, labelsPath, classes, source);
    }

    /// <summary>An image stream (N x H x W) and its label stream (N) as one data set.</summary>
    public static InMemoryDataset Load(Stream imagesStream, string imagesPath, Stream labelsStream, string labelsPath,
        IReadOnlyList<string>? classes = null, string? source = null)
    {
        var (pixels, idims) = Read(imagesStream, imagesPath);
        if (idims.Length != 3) throw new InvalidDataException($"{imagesPath}: expected 3 dimensions (images x rows x columns), found {idims.Length}");
        var (labelBytes, ldims) = Read(labelsStream, labelsPath);
        if (ldims.Length != 1) throw new InvalidDataException($"{labelsPath}: expected 1 dimension (labels), found {ldims.Length}");
        if (ldims[0] != idims[0])
            throw new InvalidDataException($"{labelsPath}: {ldims[0]} labels for the {idims[0]} images of {imagesPath}");
        var labels = labelBytes.Select(b => (int)b).ToArray();
        classes ??= Enumerable.Range(0, labels.Length == 0 ? 1 : labels.Max() + 1).Select(i => i.ToString()).ToArray();
        return new InMemoryDataset(pixels, labels, 1, idims[1], idims[2], classes, source ?? imagesPath);
    }

    /// <summary>Writes an unsigned-byte idx file (gzipped when the name ends in .gz), atomically.</summary>
    public static void Write(string path, ReadOnlySpan<byte> data, params int[] dims)
    {
        var header = new byte[4 + 4 * dims.Length];
        header[2] = 0x08; header[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dims[i]);
        var copy = data.ToArray();
        IO.AtomicFile.Write(path, s =>
        {
            if (!path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) { s.Write(header); s.Write(copy); return; }
            using var gz = new GZipStream(s, CompressionLevel.SmallestSize, leaveOpen: true);
            gz.Write(header);
            gz.Write(copy);
        });
    }
}
