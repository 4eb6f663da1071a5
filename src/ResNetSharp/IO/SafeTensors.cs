using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ResNetSharp.IO;

/// <summary>One tensor of a safetensors file: its dtype ("F32", "F64", "I64", …), shape and raw little-endian bytes.</summary>
public sealed record SafeTensor(string DType, int[] Shape, byte[] Data)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    public float[] ToFloat32()
    {
        return DType switch
        {
            "F32" when BitConverter.IsLittleEndian => MemoryMarshal.Cast<byte, float>(Data).ToArray(),
            "F32" => Enumerable.Range(0, (int)ElementCount).Select(i => BinaryPrimitives.ReadSingleLittleEndian(Data.AsSpan(i * 4))).ToArray(),
            "F64" => Enumerable.Range(0, (int)ElementCount).Select(i => (float)BinaryPrimitives.ReadDoubleLittleEndian(Data.AsSpan(i * 8))).ToArray(),
            _ => throw new InvalidDataException($"tensor of dtype {DType} cannot be read as float32"),
        };
    }

    public double[] ToFloat64()
    {
        return DType switch
        {
            "F64" => Enumerable.Range(0, (int)ElementCount).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(Data.AsSpan(i * 8))).ToArray(),
            "F32" => Enumerable.Range(0, (int)ElementCount).Select(i => (double)BinaryPrimitives.ReadSingleLittleEndian(Data.AsSpan(i * 4))).ToArray(),
            _ => throw new InvalidDataException($"tensor of dtype {DType} cannot be read as float64"),
        };
    }

    public long[] ToInt64()
    {
        return DType switch
        {
            "I64" => Enumerable.Range(0, (int)ElementCount).Select(i => BinaryPrimitives.ReadInt64LittleEndian(Data.AsSpan(i * 8))).ToArray(),
            "U32" => Enumerable.Range(0, (int)ElementCount).Select(i => (long)BinaryPrimitives.ReadUInt32LittleEndian(Data.AsSpan(i * 4))).ToArray(),
            "I32" => Enumerable.Range(0, (int)ElementCount).Select(i => (long)BinaryPrimitives.ReadInt32LittleEndian(Data.AsSpan(i * 4))).ToArray(),
            _ => throw new InvalidDataException($"tensor of dtype {DType} cannot be read as int64"),
        };
    }

    public static SafeTensor FromFloat32(ReadOnlySpan<float> values, params int[] shape)
    {
        var data = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), values[i]);
        return new SafeTensor("F32", shape, data);
    }
}

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header mapping
/// names to {dtype, shape, data_offsets} (plus an optional "__metadata__" of strings), then the data. Every size
/// is checked against the file before anything is allocated, so a corrupt or hostile file gets an error, not a
/// crash or a huge allocation.
/// </summary>
public static class SafeTensors
{
    private const long MaxHeaderBytes = 100 << 20;
    private static readonly Dictionary<string, int> DTypeSizes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["U32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    public sealed record Contents(IReadOnlyDictionary<string, SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata);

    public static Contents Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Where one tensor's bytes are: [Begin, End) relative to <see cref="Header.DataStart"/>.</summary>
    public sealed record Entry(string Name, string DType, int[] Shape, long Begin, long End);

    /// <summary>The parsed, validated header: every entry lies inside the file.</summary>
    public sealed record Header(IReadOnlyList<Entry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart);

    public static Contents Read(Stream stream, string sourceName)
    {
        var header = ReadHeader(stream, sourceName);
        var tensors = new Dictionary<string, SafeTensor>();
        foreach (var e in header.Entries.OrderBy(e => e.Begin))
        {
            var data = new byte[e.End - e.Begin];
            stream.Position = header.DataStart + e.Begin;
            stream.ReadExactly(data);
            tensors[e.Name] = new SafeTensor(e.DType, e.Shape, data);
        }
        return new Contents(tensors, header.Metadata);
    }

    /// <summary>Reads and checks the header only, so that callers can stream each tensor into its destination.</summary>
    public static Header ReadHeader(Stream stream, string sourceName)
    {
        long fileLength = stream.Length;
        Span<byte> lenBytes = stackalloc byte[8];
        if (fileLength < 8 || stream.ReadAtLeast(lenBytes, 8, throwOnEndOfStream: false) < 8)
            throw new InvalidDataException($"{sourceName}: not a safetensors file: {fileLength} bytes, shorter than the 8-byte header length at offset 0");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLength > (ulong)Math.Min(MaxHeaderBytes, fileLength - 8))
            throw new InvalidDataException($"{sourceName}: header length {headerLength} at offset 0 exceeds the {fileLength - 8} bytes after it");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength, dataLength = fileLength - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes); }
        catch (JsonException e) { throw new InvalidDataException($"{sourceName}: the JSON header (bytes 8 to {dataStart}) is invalid: {e.Message}"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{sourceName}: the header at offset 8 is not a JSON object");

        var metadata = new Dictionary<string, string>();
        var entries = new List<Entry>();
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                foreach (var m in prop.Value.EnumerateObject()) metadata[m.Name] = m.Value.ToString();
                continue;
            }
            var (name, dtype, shape, begin, end) = ParseEntry(sourceName, prop, dataLength);
            if (entries.Any(e => e.Name == name))
                throw new InvalidDataException($"{sourceName}: tensor '{name}' appears twice in the header");
            entries.Add(new Entry(name, dtype, shape, begin, end));
        }
        return new Header(entries, metadata, dataStart);
    }

    private static (string, string, int[], long, long) ParseEntry(string source, JsonProperty prop, long dataLength)
    {
        string where = $"{source}: tensor '{prop.Name}'";
        try
        {
            var v = prop.Value;
            string dtype = v.GetProperty("dtype").GetString() ?? "";
            if (!DTypeSizes.TryGetValue(dtype, out int size)) throw new InvalidDataException($"{where} has unsupported dtype '{dtype}'");
            var shape = v.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (shape.Any(d => d < 0 || d > int.MaxValue)) throw new InvalidDataException($"{where} has an invalid dimension in [{string.Join(", ", shape)}]");
            var offsets = v.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0])
                throw new InvalidDataException($"{where} has invalid data_offsets");
            if (offsets[1] > dataLength)
                throw new InvalidDataException($"{where} declares bytes {offsets[0]}..{offsets[1]} of the data section, but it holds only {dataLength} bytes (file truncated?)");
            System.Numerics.BigInteger expected = size;
            foreach (var d in shape) expected *= d;
            if (expected != offsets[1] - offsets[0])
                throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] of {dtype} needs {expected} bytes, data_offsets give {offsets[1] - offsets[0]}");
            return (prop.Name, dtype, shape.Select(d => (int)d).ToArray(), offsets[0], offsets[1]);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{where} has a malformed entry: {e.Message}");
        }
    }

    /// <summary>Writes atomically: to a temporary file beside the target, flushed, then renamed over it.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, SafeTensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        var list = tensors.ToList();
        foreach (var (name, t) in list)
        {
            header[name] = new { dtype = t.DType, shape = t.Shape, data_offsets = new[] { offset, offset + t.Data.Length } };
            offset += t.Data.Length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8;  // align the data section to 8 bytes, as the reference writer does
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        headerBytes.AsSpan(json.Length).Fill((byte)' ');

        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
            fs.Write(len);
            fs.Write(headerBytes);
            foreach (var (_, t) in list) fs.Write(t.Data);
        });
    }
}
