using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;

namespace ResNetSharp.Onnx;

/// <summary>Reading ONNX protobuf files and their tensors, with every size checked before it is allocated.</summary>
internal static class OnnxFile
{
    /// <summary>Protobuf messages are limited to 2 GiB; ONNX files with external data are not supported.</summary>
    public const long MaxFileBytes = int.MaxValue;

    public static ModelProto Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        if (info.Length == 0) throw new InvalidDataException($"{path}: empty file, not an ONNX model");
        if (info.Length > MaxFileBytes) throw new InvalidDataException($"{path}: {info.Length} bytes, larger than the 2 GiB a protobuf model can be");
        var bytes = File.ReadAllBytes(path);
        return Parse(bytes, path);
    }

    public static ModelProto Parse(byte[] bytes, string source)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source}: not a valid ONNX model (protobuf: {e.Message})");
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new InvalidDataException($"{source}: not an ONNX model (no graph with nodes; truncated or another kind of file?)");
        return model;
    }

    /// <summary>
    /// Decodes an initializer or Constant tensor: float, double (→ float), int64, int32 and the smaller integer types
    /// (→ int64). The declared dimensions must match the data stored, which the file's length bounds.
    /// </summary>
    public static Value ToValue(TensorProto t, string source)
    {
        string what = $"{source}: tensor '{t.Name}'";
        if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
            throw new InvalidDataException($"{what} keeps its data in an external file, which is not supported");
        if (t.Segment is not null) throw new InvalidDataException($"{what} is segmented, which is not supported");
        var dims = t.Dims.ToArray();
        int[] shape = Value.ToShape(dims, what);
        int count = Value.Count(shape);
        var raw = t.RawData;
        bool hasRaw = t.HasRawData;
        var type = (TensorProto.Types.DataType)t.DataType;
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
            {
                if (hasRaw) { Need(raw.Length, count, 4, what); var f = new float[count]; raw.Span.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan())); FixEndian(f); return new Value(shape, f); }
                Need(t.FloatData.Count, count, 1, what);
                return new Value(shape, t.FloatData.ToArray());
            }
            case TensorProto.Types.DataType.Double:
            {
                var f = new float[count];
                if (hasRaw) { Need(raw.Length, count, 8, what); for (int i = 0; i < count; i++) f[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(raw.Span.Slice(i * 8, 8)); }
                else { Need(t.DoubleData.Count, count, 1, what); for (int i = 0; i < count; i++) f[i] = (float)t.DoubleData[i]; }
                return new Value(shape, f);
            }
            case TensorProto.Types.DataType.Int64:
            {
                var l = new long[count];
                if (hasRaw) { Need(raw.Length, count, 8, what); for (int i = 0; i < count; i++) l[i] = BinaryPrimitives.ReadInt64LittleEndian(raw.Span.Slice(i * 8, 8)); }
                else { Need(t.Int64Data.Count, count, 1, what); t.Int64Data.CopyTo(l, 0); }
                return new Value(shape, l);
            }
            case TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Int8
                or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Uint16 or TensorProto.Types.DataType.Bool:
            {
                var l = new long[count];
                if (hasRaw)
                {
                    int size = type switch { TensorProto.Types.DataType.Int32 => 4, TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16 => 2, _ => 1 };
                    Need(raw.Length, count, size, what);
                    var s = raw.Span;
                    for (int i = 0; i < count; i++)
                        l[i] = type switch
                        {
                            TensorProto.Types.DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(s.Slice(i * 4, 4)),
                            TensorProto.Types.DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(s.Slice(i * 2, 2)),
                            TensorProto.Types.DataType.Uint16 => BinaryPrimitives.ReadUInt16LittleEndian(s.Slice(i * 2, 2)),
                            TensorProto.Types.DataType.Int8 => (sbyte)s[i],
                            _ => s[i],
                        };
                }
                else { Need(t.Int32Data.Count, count, 1, what); for (int i = 0; i < count; i++) l[i] = t.Int32Data[i]; }
                return new Value(shape, l);
            }
            default:
                throw new InvalidDataException($"{what} has data type {type}, which is not supported (float, double and integer types are)");
        }
    }

    private static void Need(int have, int count, int size, string what)
    {
        if ((long)count * size != have)
            throw new InvalidDataException($"{what}: its dimensions need {count} elements ({(long)count * size} bytes or values), the file holds {have}");
    }

    private static void FixEndian(float[] f)
    {
        if (BitConverter.IsLittleEndian) return;
        var ints = System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(f.AsSpan());
        for (int i = 0; i < ints.Length; i++) ints[i] = BinaryPrimitives.ReverseEndianness(ints[i]);
    }

    /// <summary>A float tensor as a TensorProto with raw little-endian data.</summary>
    public static TensorProto FloatTensor(string name, ReadOnlySpan<float> data, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[data.Length * 4];
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), data[i]);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    public static TensorProto LongTensor(string name, ReadOnlySpan<long> data, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(dims);
        foreach (var v in data) t.Int64Data.Add(v);
        return t;
    }
}
