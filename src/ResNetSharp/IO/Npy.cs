using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using ResNetSharp.Tensors;

namespace ResNetSharp.IO;

/// <summary>
/// NumPy .npy files (format versions 1.0, 2.0 and 3.0), float32 only on write. Strict on read: little-endian
/// '&lt;f4' or '&lt;f8' (converted to float32), C order only, every dimension and the element count checked against
/// the file's length before anything is allocated. Layout: "\x93NUMPY", major, minor, header length (u16 for v1,
/// u32 for v2/v3), a Python-dict header padded with spaces and ending in '\n', then the raw data.
/// See https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html.
/// </summary>
public static partial class Npy
{
    /// <summary>The largest tensor read or written: 2^28 elements (1 GiB of float32).</summary>
    public const long MaxElements = 1L << 28;
    private const int MaxHeaderBytes = 1 << 16;
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static Tensor<float> Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    public static Tensor<float> Read(Stream stream, string source)
    {
        long fileLength = stream.Length;
        Span<byte> prefix = stackalloc byte[12];
        int got = stream.ReadAtLeast(prefix, 10, throwOnEndOfStream: false);
        if (got < 10 || !prefix[..6].SequenceEqual(Magic))
            throw new InvalidDataException($"{source}: not a .npy file (no \\x93NUMPY magic at offset 0)");
        int major = prefix[6];
        long headerLength, headerStart;
        if (major == 1) { headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..10]); headerStart = 10; }
        else if (major is 2 or 3)
        {
            if (got < 12) throw new InvalidDataException($"{source}: truncated .npy preamble ({got} bytes)");
            headerLength = BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..12]); headerStart = 12;
        }
        else throw new InvalidDataException($"{source}: unsupported .npy format version {major}.{prefix[7]}");
        if (headerLength > MaxHeaderBytes || headerStart + headerLength > fileLength)
            throw new InvalidDataException($"{source}: .npy header length {headerLength} runs past the end of the {fileLength}-byte file");
        var headerBytes = new byte[headerLength];
        stream.Position = headerStart;
        stream.ReadExactly(headerBytes);
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes).TrimEnd(' ', '\n', '\0');

        var (descr, fortran, shape) = ParseHeader(header, source);
        if (fortran) throw new InvalidDataException($"{source}: fortran_order arrays are not supported; save it with np.ascontiguousarray");
        int itemSize = descr switch
        {
            "<f4" => 4,
            "<f8" => 8,
            _ => throw new InvalidDataException($"{source}: dtype '{descr}' is not supported; expected little-endian float32 '<f4' (or '<f8')"),
        };
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0 || d > int.MaxValue) throw new InvalidDataException($"{source}: invalid dimension {d} in shape ({string.Join(", ", shape)})");
            count *= d;
            if (count > MaxElements)
                throw new InvalidDataException($"{source}: shape ({string.Join(", ", shape)}) has more than {MaxElements} elements");
        }
        long dataStart = headerStart + headerLength, need = count * itemSize;
        if (fileLength - dataStart < need)
            throw new InvalidDataException($"{source}: shape ({string.Join(", ", shape)}) of {descr} needs {need} bytes of data, the file has {fileLength - dataStart} (truncated?)");
        if (fileLength - dataStart > need)
            throw new InvalidDataException($"{source}: {fileLength - dataStart - need} bytes after the {need} bytes of data that shape ({string.Join(", ", shape)}) needs");
        if (shape.Length == 0) shape = [];
        var tensor = new Tensor<float>(shape.Select(d => (int)d).ToArray());
        var dst = tensor.Span;
        if (itemSize == 4)
        {
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(dst);
            stream.ReadExactly(bytes);
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i * 4, 4));
        }
        else
        {
            var buffer = new byte[8 * 4096];
            for (int i = 0; i < dst.Length;)
            {
                int n = Math.Min(4096, dst.Length - i);
                stream.ReadExactly(buffer.AsSpan(0, n * 8));
                for (int j = 0; j < n; j++) dst[i + j] = (float)BinaryPrimitives.ReadDoubleLittleEndian(buffer.AsSpan(j * 8, 8));
                i += n;
            }
        }
        return tensor;
    }

    [GeneratedRegex(@"^\{\s*(?:'(descr|fortran_order|shape)'\s*:\s*('[^']*'|True|False|\([0-9,\s]*\))\s*,?\s*)+\}$")]
    private static partial Regex HeaderRegex();

    [GeneratedRegex(@"'(descr|fortran_order|shape)'\s*:\s*('[^']*'|True|False|\([0-9,\s]*\))")]
    private static partial Regex EntryRegex();

    /// <summary>Parses the header dict: exactly the keys descr, fortran_order and shape, each once.</summary>
    private static (string Descr, bool Fortran, long[] Shape) ParseHeader(string header, string source)
    {
        if (!HeaderRegex().IsMatch(header))
            throw new InvalidDataException($"{source}: malformed .npy header {Truncate(header)}");
        var values = new Dictionary<string, string>();
        foreach (Match m in EntryRegex().Matches(header))
            if (!values.TryAdd(m.Groups[1].Value, m.Groups[2].Value))
                throw new InvalidDataException($"{source}: .npy header repeats '{m.Groups[1].Value}'");
        if (!values.TryGetValue("descr", out var descr) || !values.TryGetValue("fortran_order", out var fortran) || !values.TryGetValue("shape", out var shapeText))
            throw new InvalidDataException($"{source}: .npy header {Truncate(header)} lacks descr, fortran_order or shape");
        if (!descr.StartsWith('\'')) throw new InvalidDataException($"{source}: .npy descr {descr} is not a string");
        if (fortran is not ("True" or "False")) throw new InvalidDataException($"{source}: .npy fortran_order {fortran} is not True or False");
        if (!shapeText.StartsWith('(')) throw new InvalidDataException($"{source}: .npy shape {shapeText} is not a tuple");
        var parts = shapeText.Trim('(', ')').Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length > 0 && parts[^1].Length == 0) parts = parts[..^1];
        var shape = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], out shape[i]))
                throw new InvalidDataException($"{source}: .npy shape {shapeText} has a dimension that is not an integer");
        if (shape.Length > 32) throw new InvalidDataException($"{source}: .npy shape {shapeText} has more than 32 dimensions");
        return (descr.Trim('\''), fortran == "True", shape);
    }

    private static string Truncate(string s) => s.Length <= 120 ? $"'{s}'" : $"'{s[..120]}…'";

    /// <summary>Writes a float32 C-order .npy (version 1.0, or 2.0 when the header needs it) atomically: temporary file, then rename.</summary>
    public static void Write(string path, Tensor<float> tensor)
    {
        var shape = tensor.ShapeArray;
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}";
        // The preamble + header is padded with spaces to a multiple of 64 bytes and ends with '\n'.
        int preamble = 10;
        int total = preamble + dict.Length + 1;
        bool v2 = total + (64 - total % 64) % 64 - preamble > ushort.MaxValue;
        if (v2) { preamble = 12; total = preamble + dict.Length + 1; }
        int padded = total + (64 - total % 64) % 64;
        var header = new byte[padded];
        Magic.CopyTo(header, 0);
        header[6] = (byte)(v2 ? 2 : 1);
        header[7] = 0;
        int headerLength = padded - preamble;
        if (v2) BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)headerLength);
        else BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)headerLength);
        Encoding.ASCII.GetBytes(dict).CopyTo(header, preamble);
        header.AsSpan(preamble + dict.Length, padded - preamble - dict.Length - 1).Fill((byte)' ');
        header[^1] = (byte)'\n';

        AtomicFile.Write(path, fs =>
        {
            fs.Write(header);
            var src = tensor.Span;
            if (BitConverter.IsLittleEndian) fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(src));
            else
            {
                var b = new byte[4];
                foreach (float v in src) { BinaryPrimitives.WriteSingleLittleEndian(b, v); fs.Write(b); }
            }
        });
    }
}
