using Google.Protobuf;
using Onnx;

namespace ResNetSharp.Onnx.Tests.Support;

/// <summary>Small ONNX models built in code, for operator tests.</summary>
public static class Graphs
{
    public static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
    public static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };
    public static AttributeProto Floats(string name, params float[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.AddRange(v);
        return a;
    }
    public static AttributeProto String(string name, string v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };
    public static AttributeProto Tensor(string name, TensorProto t) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = t };

    public static TensorProto Longs(string name, params long[] v)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(v.Length);
        t.Int64Data.AddRange(v);
        return t;
    }

    public static TensorProto Floats(string name, int[] shape, int seed)
    {
        var rng = new Random(seed);
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(shape.Select(d => (long)d));
        int count = shape.Aggregate(1, (a, b) => a * b);
        for (int i = 0; i < count; i++) t.FloatData.Add((float)(rng.NextDouble() * 2 - 1));
        return t;
    }

    public static ValueInfoProto Info(string name, int[]? shape)
    {
        var tt = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float };
        if (shape is not null)
        {
            tt.Shape = new TensorShapeProto();
            foreach (var d in shape) tt.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tt } };
    }

    /// <summary>
    /// A model of the given nodes: float graph inputs x0, x1, … of the given shapes, the initializers, outputs y0, y1, ….
    /// Node inputs name them directly.
    /// </summary>
    public static byte[] Build(int opset, NodeProto[] nodes, int[][] inputs, TensorProto[] initializers, int outputs = 1)
    {
        var g = new GraphProto { Name = "test" };
        g.Node.AddRange(nodes);
        for (int i = 0; i < inputs.Length; i++) g.Input.Add(Info($"x{i}", inputs[i]));
        g.Initializer.AddRange(initializers);
        long ir = opset <= 8 ? 3 : opset <= 10 ? opset - 5 : opset <= 14 ? 7 : 8;
        if (ir < 4) foreach (var t in initializers) g.Input.Add(new ValueInfoProto { Name = t.Name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = t.DataType, Shape = Shape(t) } } });
        for (int o = 0; o < outputs; o++) g.Output.Add(Info($"y{o}", null));
        var m = new ModelProto { IrVersion = ir, Graph = g, ProducerName = "tests" };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return m.ToByteArray();
    }

    private static TensorShapeProto Shape(TensorProto t)
    {
        var s = new TensorShapeProto();
        foreach (var d in t.Dims) s.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return s;
    }

    public static NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = op.ToLowerInvariant() + "_node" };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attributes);
        return n;
    }

    /// <summary>One node on float inputs x0…: output y0.</summary>
    public static byte[] Single(string op, int opset, int[][] inputs, params AttributeProto[] attributes) =>
        Build(opset, [Node(op, inputs.Select((_, i) => $"x{i}").ToArray(), ["y0"], attributes)], inputs, []);
}
