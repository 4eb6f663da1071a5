using Onnx;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx;

/// <summary>
/// Maps a torchvision-structured ResNet graph (as torch.onnx.export writes it, BN folded into the convolutions or not)
/// onto a native <see cref="ResNet{T}"/>: the graph's Conv nodes, in order, take the places of the model's Conv2d
/// layers (torchvision's forward order equals the state-dict order: conv1, conv2[, conv3], downsample), the final Gemm
/// or MatMul becomes fc. A convolution with folded BN goes in with its BN set to the identity plus the folded bias
/// (γ = 1, β = bias, μ = 0, σ² = 1 − ε). Every architecture whose layer shapes and strides fit is tried, and a
/// candidate is accepted only when it computes what the graph computes on a random input (within 1e-4 of scale).
/// </summary>
internal static class TorchvisionMapping
{
    public static (ResNet<float> Model, ModelMetadata Metadata)? TryMap(OnnxGraph graph)
    {
        var nodes = graph.Model.Graph.Node;
        var constants = graph.Model.Graph.Initializer.ToDictionary(t => t.Name, t => OnnxFile.ToValue(t, graph.Source));
        foreach (var n in nodes.Where(n => n.OpType == "Constant"))
            if (n.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } t && n.Output.Count == 1)
                constants[n.Output[0]] = OnnxFile.ToValue(t, graph.Source);
        var convs = nodes.Where(n => n.OpType == "Conv").ToList();
        var fcNode = nodes.LastOrDefault(n => n.OpType is "Gemm" or "MatMul");
        if (convs.Count == 0 || fcNode is null || !constants.TryGetValue(fcNode.Input[1], out var fcW) || fcW.Rank != 2) return null;
        bool transB = fcNode.OpType == "Gemm" && fcNode.Attribute.Any(a => a.Name == "transB" && a.I != 0);
        int classes = transB ? fcW.Shape[0] : fcW.Shape[1];
        if (!constants.TryGetValue(convs[0].Input[1], out var stemW) || stemW.Rank != 4) return null;
        int inChannels = stemW.Shape[1];

        int features = transB ? fcW.Shape[1] : fcW.Shape[0];
        // Building a model costs its random initialisation, so only the depths with this classifier width are tried.
        foreach (var arch in ResNets.Architectures.Where(a => FeatureWidth(a) == features))
            foreach (var (small, strideOn1x1) in new[] { (false, false), (true, false), (false, true) })
            {
                ResNet<float> model;
                try
                {
                    if (small && ResNets.IsCifar(arch)) continue;
                    if (stemW.Shape[2] != (small || ResNets.IsCifar(arch) ? 3 : 7)) continue;  // the stem: 7x7, or 3x3 for small inputs
                    model = ResNets.Create(arch, new ResNetOptions { NumClasses = classes, InChannels = inChannels, SmallInputStem = small, StrideOnFirst1x1 = strideOn1x1 });
                }
                catch (ArgumentException) { continue; }
                if (strideOn1x1 && !model.Blocks.OfType<Bottleneck<float>>().Any()) continue;
                if (!Fill(model, convs, nodes, constants, fcNode, fcW, transB)) continue;
                model.Eval();
                if (!SameOutputs(model, graph, inChannels, ResNets.IsCifar(arch) || small ? 32 : 64)) continue;
                var metadata = new ModelMetadata
                {
                    Architecture = arch, NumClasses = classes, InChannels = inChannels, SmallInputStem = small, StrideOnFirst1x1 = strideOn1x1,
                    Preprocess = inChannels == 3 && !ResNets.IsCifar(arch) && !small ? Preprocessing.ImageNet : null,
                    Provenance = new Dictionary<string, string> { ["onnx"] = Path.GetFileName(graph.Source) },
                };
                return (model, metadata);
            }
        return null;
    }

    /// <summary>Width of the pooled features: 64 for the CIFAR networks, 2048 for the bottleneck depths, 512 otherwise.</summary>
    private static int FeatureWidth(string arch) =>
        ResNets.IsCifar(arch) ? 64 : arch is "resnet50" or "resnet101" or "resnet152" ? 2048 : 512;

    private static bool Fill(ResNet<float> model, List<NodeProto> convs, IList<NodeProto> nodes, Dictionary<string, Value> constants,
        NodeProto fcNode, Value fcW, bool transB)
    {
        // Each Conv2d and the BatchNorm2d that follows it, in module order.
        var pairs = new List<(Conv2d<float> Conv, BatchNorm2d<float> Norm)>();
        Conv2d<float>? pending = null;
        foreach (var m in model.Modules())
        {
            if (m is Conv2d<float> c) pending = c;
            else if (m is BatchNorm2d<float> b && pending is not null) { pairs.Add((pending, b)); pending = null; }
        }
        if (pairs.Count != convs.Count) return false;
        for (int i = 0; i < pairs.Count; i++)
        {
            var (conv, norm) = pairs[i];
            var node = convs[i];
            if (!constants.TryGetValue(node.Input[1], out var w) || !w.IsFloat || !w.Shape.AsSpan().SequenceEqual(conv.Weight.Value.Shape)) return false;
            long Attr(string name, int index, long fallback) =>
                node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? (a.Ints.Count > index ? a.Ints[index] : a.I) : fallback;
            if (Attr("strides", 0, 1) != conv.Stride || Attr("strides", 1, 1) != conv.Stride) return false;
            for (int k = 0; k < 4; k++) if (Attr("pads", k, 0) != conv.Padding) return false;
            if (Attr("group", 0, 1) != 1 || Attr("dilations", 0, 1) != 1 || Attr("dilations", 1, 1) != 1) return false;
            if (node.Attribute.Any(a => a.Name == "auto_pad" && a.S.ToStringUtf8() is not ("NOTSET" or ""))) return false;
            w.F!.CopyTo(conv.Weight.Value.Span);
            var bn = nodes.FirstOrDefault(n => n.OpType == "BatchNormalization" && n.Input[0] == node.Output[0]);
            if (bn is not null)
            {
                var p = new Value[4];
                for (int k = 0; k < 4; k++)
                    if (!constants.TryGetValue(bn.Input[k + 1], out p[k]!) || p[k].Length != conv.OutChannels) return false;
                float eps = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
                if (Math.Abs(eps - norm.Eps) > 1e-9 || node.Input.Count > 2 && node.Input[2].Length > 0) return false;
                p[0].F!.CopyTo(norm.Weight.Value.Span); p[1].F!.CopyTo(norm.Bias.Value.Span);
                p[2].F!.CopyTo(norm.RunningMean.Span); p[3].F!.CopyTo(norm.RunningVar.Span);
            }
            else
            {
                // BN folded into this convolution by the exporter: the BN becomes the identity plus the bias.
                norm.Weight.Value.Fill(1f);
                norm.RunningMean.Clear();
                norm.RunningVar.Fill((float)(1 - norm.Eps));
                if (node.Input.Count > 2 && node.Input[2].Length > 0)
                {
                    if (!constants.TryGetValue(node.Input[2], out var b) || b.Length != conv.OutChannels) return false;
                    b.F!.CopyTo(norm.Bias.Value.Span);
                }
                else norm.Bias.Value.Clear();
            }
        }
        var fc = model.Fc;
        var dst = fc.Weight.Value.Span;
        int outF = fc.OutFeatures, inF = fc.InFeatures;
        if (fcW.Length != outF * inF) return false;
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++)
                dst[o * inF + i] = transB ? fcW.F![o * inF + i] : fcW.F![i * outF + o];
        if (fc.Bias is not null)
        {
            var biasName = fcNode.OpType == "Gemm" && fcNode.Input.Count > 2 ? fcNode.Input[2] : null;
            if (biasName is not null && constants.TryGetValue(biasName, out var b) && b.Length == outF) b.F!.CopyTo(fc.Bias.Value.Span);
            else fc.Bias.Value.Clear();
        }
        model.StateChanged();
        return true;
    }

    /// <summary>Runs the candidate and the graph on one random image; accepts when they agree within 1e-4 of the output's scale.</summary>
    private static bool SameOutputs(ResNet<float> model, OnnxGraph graph, int channels, int size)
    {
        var rng = new Random(1);
        var x = new Tensor<float>(1, channels, size, size + 8);
        foreach (ref float v in x.Span) v = (float)(rng.NextDouble() * 2 - 1);
        Tensor<float> expected;
        try { expected = graph.Run(x); }
        catch (Exception e) when (e is ArgumentException or InvalidDataException) { return false; }
        var actual = model.Forward(x);
        if (!actual.Shape.SequenceEqual(expected.Shape)) return false;
        double diff = 0, scale = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs((double)actual.Span[i] - expected.Span[i]));
            scale = Math.Max(scale, Math.Abs((double)expected.Span[i]));
        }
        return scale > 0 && diff <= 1e-4 * scale;
    }
}
