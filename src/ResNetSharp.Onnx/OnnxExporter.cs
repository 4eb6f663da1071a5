using Google.Protobuf;
using Onnx;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx;

/// <summary>
/// Writes a <see cref="ResNet{T}"/> as an ONNX graph in the torchvision layout: one node per layer, named by its
/// state-dict path ("layer1.0.conv1"), weights as initializers under their state-dict names ("layer1.0.conv1.weight",
/// "layer1.0.bn1.running_mean"), BatchNormalization kept as its own node so that <see cref="OnnxImporter"/> gets every
/// tensor back. Input "input" (N, C, H, W) and output "logits" (N, classes) with symbolic N, H and W. The
/// <see cref="ModelMetadata"/> goes into metadata_props under "resnetsharp", so labels and preprocessing survive a round trip.
/// </summary>
public static class OnnxExporter
{
    public const string InputName = "input", OutputName = "logits";

    /// <summary>Exports at <paramref name="opset"/> (7 to 21); written atomically (temporary file, then rename).</summary>
    public static void Export(ResNet<float> model, ModelMetadata metadata, string path, int opset = 13)
    {
        var bytes = ToModel(model, metadata, opset).ToByteArray();
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>The model as an ONNX ModelProto, serialised.</summary>
    public static byte[] ToBytes(ResNet<float> model, ModelMetadata metadata, int opset = 13) => ToModel(model, metadata, opset).ToByteArray();

    internal static ModelProto ToModel(ResNet<float> model, ModelMetadata metadata, int opset)
    {
        if (opset < Ops.OpSet.MinOpset || opset > Ops.OpSet.MaxOpset)
            throw new ArgumentException($"opset {opset} is not supported for export; choose {Ops.OpSet.MinOpset} to {Ops.OpSet.MaxOpset}");
        var e = new Emitter(opset);
        string x = InputName;
        foreach (var (_, child) in model.Children) x = e.Module(child, x);
        e.Graph.Node[^1].Output[0] = OutputName;

        var graph = e.Graph;
        graph.Name = model.Architecture;
        graph.Input.Add(ValueInfo(InputName, new object[] { "N", model.Options.InChannels, "H", "W" }));
        graph.Output.Add(ValueInfo(OutputName, new object[] { "N", model.Fc.OutFeatures }));
        long ir = IrVersion(opset);
        if (ir < 4)
            // Before IR version 4 every initializer must also be declared as a graph input.
            foreach (var t in graph.Initializer)
                graph.Input.Add(ValueInfo(t.Name, t.Dims.Select(d => (object)(int)d).ToArray()));
        var m = new ModelProto
        {
            IrVersion = ir,
            ProducerName = "ResNetSharp",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            Graph = graph,
            DocString = $"{model.Architecture} exported by ResNetSharp",
        };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        m.MetadataProps.Add(new StringStringEntryProto { Key = ModelFile.MetadataKey, Value = metadata.ToJson() });
        return m;
    }

    /// <summary>The IR version that introduced each opset (docs/Versioning.md), so older runtimes accept the file.</summary>
    private static long IrVersion(int opset) => opset switch
    {
        <= 8 => 3, 9 => 4, 10 => 5, 11 => 6, <= 14 => 7, <= 18 => 8, <= 20 => 9, _ => 10,
    };

    private static ValueInfoProto ValueInfo(string name, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is int v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = (string)d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private sealed class Emitter(int opset)
    {
        public GraphProto Graph { get; } = new();

        private NodeProto Node(string op, string name, string[] inputs, params AttributeProto[] attributes)
        {
            var n = new NodeProto { OpType = op, Name = name };
            n.Input.AddRange(inputs);
            n.Output.Add(name + ".out");
            n.Attribute.AddRange(attributes);
            Graph.Node.Add(n);
            return n;
        }

        private string Out(NodeProto n) => n.Output[0];

        private void Init(string name, Tensor<float> t) =>
            Graph.Initializer.Add(OnnxFile.FloatTensor(name, t.Span, t.ShapeArray.Select(d => (long)d).ToArray()));

        private static AttributeProto Ints(string name, params long[] v)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(v);
            return a;
        }

        private static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
        private static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };
        private static AttributeProto String(string name, string v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };

        public string Module(Module<float> m, string x)
        {
            switch (m)
            {
                case Conv2d<float> c:
                {
                    Init(c.Name + ".weight", c.Weight.Value);
                    var inputs = new List<string> { x, c.Name + ".weight" };
                    if (c.Bias is not null) { Init(c.Name + ".bias", c.Bias.Value); inputs.Add(c.Name + ".bias"); }
                    return Out(Node("Conv", c.Name, inputs.ToArray(), Ints("kernel_shape", c.KernelSize, c.KernelSize),
                        Ints("strides", c.Stride, c.Stride), Ints("pads", c.Padding, c.Padding, c.Padding, c.Padding), Ints("dilations", 1, 1), Int("group", 1)));
                }
                case BatchNorm2d<float> bn:
                {
                    Init(bn.Name + ".weight", bn.Weight.Value); Init(bn.Name + ".bias", bn.Bias.Value);
                    Init(bn.Name + ".running_mean", bn.RunningMean); Init(bn.Name + ".running_var", bn.RunningVar);
                    return Out(Node("BatchNormalization", bn.Name,
                        [x, bn.Name + ".weight", bn.Name + ".bias", bn.Name + ".running_mean", bn.Name + ".running_var"], Float("epsilon", (float)bn.Eps)));
                }
                case ReLU<float> r:
                    return Out(Node("Relu", r.Name, [x]));
                case MaxPool2d<float> p:
                    return Out(Node("MaxPool", p.Name, [x], Ints("kernel_shape", p.KernelSize, p.KernelSize), Ints("strides", p.Stride, p.Stride),
                        Ints("pads", p.Padding, p.Padding, p.Padding, p.Padding)));
                case AdaptiveAvgPool2d<float> a:
                    return Out(Node("GlobalAveragePool", a.Name, [x]));
                case Flatten<float> f:
                    return Out(Node("Flatten", f.Name, [x], Int("axis", 1)));
                case Linear<float> l:
                {
                    Init(l.Name + ".weight", l.Weight.Value);
                    var inputs = new List<string> { x, l.Name + ".weight" };
                    if (l.Bias is not null) { Init(l.Name + ".bias", l.Bias.Value); inputs.Add(l.Name + ".bias"); }
                    else if (opset < 11)
                    {
                        // C is required before opset 11.
                        var zero = new Tensor<float>(l.OutFeatures);
                        Init(l.Name + ".zero_bias", zero); inputs.Add(l.Name + ".zero_bias");
                    }
                    return Out(Node("Gemm", l.Name, inputs.ToArray(), Float("alpha", 1f), Float("beta", 1f), Int("transB", 1)));
                }
                case ResidualBlock<float> block:
                {
                    string f = x;
                    foreach (var (name, child) in block.Children)
                        if (name != "downsample") f = Module(child, f);
                    if (block.Shortcut == ShortcutKind.None) return Out(Node("Relu", Join(block.Name, "relu"), [f]));
                    string shortcut = block.Downsample is null ? x : Module(block.Downsample, x);
                    var add = Node("Add", Join(block.Name, "add"), [f, shortcut]);
                    return Out(Node("Relu", Join(block.Name, "relu"), [Out(add)]));
                }
                case ZeroPadShortcut<float> z:
                {
                    // x[:, :, ::s, ::s] as a 1x1 average pool with stride s (exactly the subsample), then zero channels on both sides.
                    var sub = Node("AveragePool", z.Name + ".subsample", [x], Ints("kernel_shape", 1, 1), Ints("strides", z.Stride, z.Stride));
                    int before = (z.OutChannels - z.InChannels) / 2, after = z.OutChannels - z.InChannels - before;
                    long[] pads = [0, before, 0, 0, 0, after, 0, 0];
                    if (opset < 11)
                        return Out(Node("Pad", z.Name + ".pad", [Out(sub)], Ints("pads", pads), String("mode", "constant"), Float("value", 0f)));
                    Graph.Initializer.Add(OnnxFile.LongTensor(z.Name + ".pads", pads, pads.Length));
                    return Out(Node("Pad", z.Name + ".pad", [Out(sub), z.Name + ".pads"], String("mode", "constant")));
                }
                case Sequential<float> s:
                    foreach (var (_, child) in s.Children) x = Module(child, x);
                    return x;
                default:
                    throw new NotSupportedException($"ONNX export: layer '{m.Name}' ({m.Kind}) has no ONNX form");
            }
        }

        private static string Join(string a, string b) => a.Length == 0 ? b : a + "." + b;
    }
}

/// <summary>Reads ONNX ResNets back into native models.</summary>
public static class OnnxImporter
{
    /// <summary>Whether the file carries ResNetSharp metadata (written by <see cref="OnnxExporter"/>).</summary>
    public static bool HasResNetMetadata(string path) =>
        OnnxFile.Read(path).MetadataProps.Any(p => p.Key == ModelFile.MetadataKey);

    /// <summary>
    /// The native model and metadata of an ONNX file: one written by <see cref="OnnxExporter"/> (architecture from its
    /// metadata, every parameter and BN statistic from the initializer of the same state-dict name), or a
    /// torchvision-structured ResNet exported by PyTorch (mapped layer by layer and checked to compute the same).
    /// </summary>
    public static (ResNet<float> Model, ModelMetadata Metadata) ToResNet(string path)
    {
        var proto = OnnxFile.Read(path);
        var json = proto.MetadataProps.LastOrDefault(p => p.Key == ModelFile.MetadataKey)?.Value;
        if (json is null)
            return TorchvisionMapping.TryMap(OnnxGraph.FromModel(proto, path))
                ?? throw new InvalidDataException($"{path}: no ResNetSharp metadata, and the graph does not map onto a ResNetSharp architecture " +
                    "(torchvision layout); it still runs with OnnxImageModel / resnet infer");
        var metadata = ModelMetadata.FromJson(json, path);
        ResNet<float> model;
        try { model = ResNets.Create(metadata.Architecture, metadata.ToOptions()); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        var wanted = StateDict.From(model).Select(p => p.Key).ToHashSet();
        var state = new Dictionary<string, SafeTensor>();
        foreach (var t in proto.Graph.Initializer)
        {
            if (!wanted.Contains(t.Name)) continue;
            var v = OnnxFile.ToValue(t, path);
            if (!v.IsFloat) throw new InvalidDataException($"{path}: initializer '{t.Name}' is not float");
            state[t.Name] = SafeTensor.FromFloat32(v.F!, v.Shape);
        }
        try { StateDict.Load(model, state); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        catch (KeyNotFoundException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
        return (model, metadata);
    }
}
