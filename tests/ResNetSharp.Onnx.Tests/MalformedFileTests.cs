using Google.Protobuf;
using Onnx;
using ResNetSharp.IO;
using ResNetSharp.Onnx.Tests.Support;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx.Tests;

/// <summary>Truncated, corrupt and oversized ONNX and .npy files: clear errors naming the file, no huge allocation.</summary>
public class MalformedFileTests
{
    private static string Write(Paths.TempDir dir, string name, byte[] bytes)
    {
        string p = dir.File(name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Fact]
    public void Truncated_onnx_files_fail_with_the_file_name_at_every_cut()
    {
        using var dir = new Paths.TempDir();
        var bytes = File.ReadAllBytes(Paths.Golden("resnet8_opset9.onnx"));
        foreach (int cut in new[] { 0, 1, 7, 100, 1000, bytes.Length / 3, bytes.Length / 2, bytes.Length - 10, bytes.Length - 1 })
        {
            string p = Write(dir, $"cut{cut}.onnx", bytes[..cut]);
            var e = Assert.Throws<InvalidDataException>(() => OnnxImageModel.Load(p));
            Assert.Contains(p, e.Message);
        }
    }

    [Fact]
    public void Random_bytes_are_not_a_model()
    {
        using var dir = new Paths.TempDir();
        var rng = new Random(1);
        for (int i = 0; i < 20; i++)
        {
            var junk = new byte[rng.Next(1, 4000)];
            rng.NextBytes(junk);
            string p = Write(dir, $"junk{i}.onnx", junk);
            var e = Assert.Throws<InvalidDataException>(() => OnnxGraph.Load(p));
            Assert.Contains(p, e.Message);
        }
    }

    private static byte[] WithInitializer(TensorProto t)
    {
        var node = Graphs.Node("Add", ["x0", t.Name], ["y0"]);
        return Graphs.Build(13, [node], [[1, 4]], [t]);
    }

    [Fact]
    public void Declared_dimensions_larger_than_the_data_are_rejected_before_allocating()
    {
        var huge = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(new byte[16]) };
        huge.Dims.AddRange([1L << 20, 1L << 20]);
        var e = Assert.Throws<InvalidDataException>(() => OnnxGraph.FromBytes(WithInitializer(huge), "huge.onnx"));
        Assert.Contains("huge.onnx: tensor 'w'", e.Message);
        Assert.Contains("more than", e.Message);

        var lying = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(new byte[16]) };
        lying.Dims.AddRange([1L, 400L]);
        e = Assert.Throws<InvalidDataException>(() => OnnxGraph.FromBytes(WithInitializer(lying), "lying.onnx"));
        Assert.Contains("lying.onnx: tensor 'w': its dimensions need 400 elements (1600 bytes or values), the file holds 16", e.Message);

        var negative = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float };
        negative.Dims.AddRange([-3L]);
        e = Assert.Throws<InvalidDataException>(() => OnnxGraph.FromBytes(WithInitializer(negative), "neg.onnx"));
        Assert.Contains("invalid dimension -3", e.Message);

        var external = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        external.Dims.Add(4);
        e = Assert.Throws<InvalidDataException>(() => OnnxGraph.FromBytes(WithInitializer(external), "ext.onnx"));
        Assert.Contains("external file", e.Message);
    }

    [Fact]
    public void Reshape_to_an_absurd_shape_is_an_error_not_an_allocation()
    {
        var bytes = Graphs.Build(13, [Graphs.Node("Reshape", ["x0", "s"], ["y0"])], [[2, 3]], [Graphs.Longs("s", 1L << 40, 1L << 40)]);
        var graph = OnnxGraph.FromBytes(bytes, "r.onnx");
        var e = Assert.Throws<InvalidDataException>(() => graph.Run(Ort.Random(1, 2, 3)));
        Assert.Contains("r.onnx: node 'reshape_node' (Reshape)", e.Message);
        Assert.Contains("too large", e.Message);
    }

    [Fact]
    public void Absurd_window_attributes_are_errors()
    {
        var bytes = Graphs.Build(13, [Graphs.Node("MaxPool", ["x0"], ["y0"], Graphs.Ints("kernel_shape", 3, 3), Graphs.Ints("pads", 1L << 40, 0, 1L << 40, 0))], [[1, 1, 8, 8]], []);
        var graph = OnnxGraph.FromBytes(bytes, "pool.onnx");
        var e = Assert.Throws<InvalidDataException>(() => graph.Run(Ort.Random(1, 1, 1, 8, 8)));
        Assert.Contains("pool.onnx: node 'maxpool_node' (MaxPool)", e.Message);
        Assert.Contains("pads must be within", e.Message);

        var conv = Graphs.Build(13, [Graphs.Node("Conv", ["x0", "w"], ["y0"], Graphs.Ints("strides", 0, 1))], [[1, 1, 8, 8]], [Graphs.Floats("w", [1, 1, 3, 3], 1)]);
        e = Assert.Throws<InvalidDataException>(() => OnnxGraph.FromBytes(conv, "conv.onnx").Run(Ort.Random(1, 1, 1, 8, 8)));
        Assert.Contains("stride 0", e.Message);
    }

    [Fact]
    public void Npy_round_trips_and_reads_float64()
    {
        using var dir = new Paths.TempDir();
        var t = Ort.Random(1, 2, 3, 4, 5);
        Npy.Write(dir.File("a.npy"), t);
        Assert.Equal(t.Span.ToArray(), Npy.Read(dir.File("a.npy")).Span.ToArray());
        var one = Tensor<float>.FromArray([1.5f, -2f, 3f], 3);
        Npy.Write(dir.File("b.npy"), one);
        Assert.Equal([3], Npy.Read(dir.File("b.npy")).ShapeArray);

        // float64, written by hand the way numpy does (v1.0 header, padded to 64 bytes)
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        var bytes = NpyBytes(1, header, BitConverter.GetBytes(1.25).Concat(BitConverter.GetBytes(-2.0)).Concat(BitConverter.GetBytes(1e-3)).Concat(BitConverter.GetBytes(7.0)).ToArray());
        var d = Npy.Read(Write(dir, "d.npy", bytes));
        Assert.Equal([1.25f, -2f, 1e-3f, 7f], d.Span.ToArray());
        // version 2.0 header
        var v2 = NpyBytes(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", BitConverter.GetBytes(4.5f));
        Assert.Equal([4.5f], Npy.Read(Write(dir, "v2.npy", v2)).Span.ToArray());
    }

    private static byte[] NpyBytes(int major, string header, byte[] data)
    {
        int pre = major == 1 ? 10 : 12;
        int total = pre + header.Length + 1;
        int pad = (64 - total % 64) % 64;
        var h = header + new string(' ', pad) + "\n";
        var b = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        if (major == 1) b.AddRange(BitConverter.GetBytes((ushort)h.Length)); else b.AddRange(BitConverter.GetBytes((uint)h.Length));
        b.AddRange(System.Text.Encoding.ASCII.GetBytes(h));
        b.AddRange(data);
        return b.ToArray();
    }

    [Theory]
    [InlineData("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "fortran_order")]
    [InlineData("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16, "'>f4' is not supported")]
    [InlineData("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", 32, "'<i8' is not supported")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }", 16, "more than")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 16, "needs 24 bytes of data, the file has 16")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 20, "4 bytes after")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }", 16, "malformed")]
    [InlineData("{'descr': '<f4', 'shape': (2, 2), }", 16, "lacks")]
    [InlineData("import os; os.system('x')", 16, "malformed")]
    public void Strict_npy_reader_rejects(string header, int dataBytes, string expected)
    {
        using var dir = new Paths.TempDir();
        string p = Write(dir, "bad.npy", NpyBytes(1, header, new byte[dataBytes]));
        var e = Assert.Throws<InvalidDataException>(() => Npy.Read(p));
        Assert.Contains(p, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Npy_header_length_past_the_end_is_rejected()
    {
        using var dir = new Paths.TempDir();
        var b = NpyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new byte[4]);
        b[8] = 0xff; b[9] = 0xff;
        var e = Assert.Throws<InvalidDataException>(() => Npy.Read(Write(dir, "h.npy", b)));
        Assert.Contains("runs past the end", e.Message);
        e = Assert.Throws<InvalidDataException>(() => Npy.Read(Write(dir, "empty.npy", [])));
        Assert.Contains("not a .npy file", e.Message);
    }
}
