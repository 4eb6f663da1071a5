using Onnx;
using ResNetSharp.Onnx.Tests.Support;
using ResNetSharp.Tensors;
using static ResNetSharp.Onnx.Tests.Support.Graphs;

namespace ResNetSharp.Onnx.Tests;

/// <summary>Every supported operator, across the opsets where its form changes, against ONNX Runtime on random inputs.</summary>
public class OperatorTests
{
    private sealed record Case(int Opset, NodeProto[] Nodes, int[][] Inputs, TensorProto[] Inits, int Outputs = 1);

    private static Case One(int opset, string op, int[][] inputs, params AttributeProto[] attrs) =>
        new(opset, [Node(op, inputs.Select((_, i) => $"x{i}").ToArray(), ["y0"], attrs)], inputs, []);

    private static Case With(int opset, string op, string[] nodeInputs, int[][] inputs, TensorProto[] inits, params AttributeProto[] attrs) =>
        new(opset, [Node(op, nodeInputs, ["y0"], attrs)], inputs, inits);

    private static readonly int[] Img = [2, 3, 9, 11];

    private static readonly Dictionary<string, Case> Cases = new()
    {
        // Conv: our packed kernel (equal pads and strides), the padded copy (unequal pads), im2col (groups, dilation, unequal strides).
        ["conv_k3s1p1_bias_opset7"] = With(7, "Conv", ["x0", "w", "b"], [Img], [Floats("w", [4, 3, 3, 3], 1), Floats("b", [4], 2)], Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1)),
        ["conv_k7s2_pads3322_cntk"] = With(8, "Conv", ["x0", "w"], [[1, 3, 20, 17]], [Floats("w", [5, 3, 7, 7], 3)], Ints("strides", 2, 2), Ints("pads", 3, 3, 2, 2)),
        ["conv_k1s2"] = With(13, "Conv", ["x0", "w"], [Img], [Floats("w", [6, 3, 1, 1], 4)], Ints("strides", 2, 2)),
        ["conv_same_upper"] = With(11, "Conv", ["x0", "w"], [Img], [Floats("w", [4, 3, 3, 3], 5)], String("auto_pad", "SAME_UPPER"), Ints("strides", 2, 2)),
        ["conv_same_lower"] = With(11, "Conv", ["x0", "w"], [Img], [Floats("w", [4, 3, 4, 4], 6)], String("auto_pad", "SAME_LOWER")),
        ["conv_valid"] = With(21, "Conv", ["x0", "w"], [Img], [Floats("w", [4, 3, 3, 2], 7)], String("auto_pad", "VALID")),
        ["conv_group3_dilation2"] = With(13, "Conv", ["x0", "w", "b"], [[2, 6, 10, 10]], [Floats("w", [9, 2, 3, 3], 8), Floats("b", [9], 9)], Int("group", 3), Ints("dilations", 2, 2), Ints("pads", 2, 1, 2, 1)),
        ["conv_strides_1x2"] = With(13, "Conv", ["x0", "w"], [Img], [Floats("w", [4, 3, 3, 3], 10)], Ints("strides", 1, 2), Ints("pads", 1, 1, 1, 1)),
        ["batchnorm_opset7_spatial"] = With(7, "BatchNormalization", ["x0", "s", "b", "m", "v"], [Img], [Floats("s", [3], 1), Floats("b", [3], 2), Floats("m", [3], 3), Positive("v", 3)], Int("spatial", 1), Float("epsilon", 1e-3f)),
        ["batchnorm_opset9"] = With(9, "BatchNormalization", ["x0", "s", "b", "m", "v"], [Img], [Floats("s", [3], 4), Floats("b", [3], 5), Floats("m", [3], 6), Positive("v", 3)]),
        ["batchnorm_opset15_2d"] = With(15, "BatchNormalization", ["x0", "s", "b", "m", "v"], [[4, 3]], [Floats("s", [3], 7), Floats("b", [3], 8), Floats("m", [3], 9), Positive("v", 3)]),
        ["conv_bn_folded"] = new(13, [Node("Conv", ["x0", "w"], ["c"], Ints("pads", 1, 1, 1, 1)), Node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y0"])], [Img],
            [Floats("w", [4, 3, 3, 3], 1), Floats("s", [4], 2), Floats("b", [4], 3), Floats("m", [4], 4), Positive("v", 4)]),
        ["relu"] = One(13, "Relu", [Img]),
        ["add_broadcast_channel"] = With(7, "Add", ["x0", "c"], [Img], [Floats("c", [3, 1, 1], 1)]),
        ["add_same_shape"] = One(14, "Add", [Img, Img]),
        ["sub_broadcast_both"] = One(13, "Sub", [[2, 1, 5], [3, 1]]),
        ["mul_scalar"] = With(7, "Mul", ["x0", "c"], [Img], [Floats("c", [], 2)]),
        ["div_rows"] = With(13, "Div", ["x0", "c"], [[4, 6]], [Positive("c", 6)]),
        ["sum_three_broadcast"] = One(8, "Sum", [Img, [11], [3, 1, 1]]),
        ["sum_opset7_same_shape"] = One(7, "Sum", [Img, Img]),
        ["maxpool_k3s2p1"] = One(7, "MaxPool", [Img], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1)),
        ["maxpool_pads_1100"] = One(8, "MaxPool", [[1, 3, 112, 112]], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 0, 0)),
        ["maxpool_ceil"] = One(10, "MaxPool", [Img], Ints("kernel_shape", 2, 2), Ints("strides", 2, 2), Int("ceil_mode", 1)),
        ["maxpool_same_upper"] = One(12, "MaxPool", [Img], Ints("kernel_shape", 2, 3), String("auto_pad", "SAME_UPPER"), Ints("strides", 2, 1)),
        // (SAME padding with dilation is left out: ONNX Runtime sizes it from the undilated kernel, against the spec's ceil(in/stride).)
        ["maxpool_dilated_pads"] = One(12, "MaxPool", [Img], Ints("kernel_shape", 2, 3), Ints("dilations", 2, 1), Ints("pads", 1, 0, 1, 2)),
        ["averagepool_exclude_pad"] = One(7, "AveragePool", [Img], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1)),
        ["averagepool_include_pad_ceil"] = One(11, "AveragePool", [Img], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Int("count_include_pad", 1), Int("ceil_mode", 1)),
        ["averagepool_k7_cntk"] = One(8, "AveragePool", [[1, 4, 7, 7]], Ints("kernel_shape", 7, 7), Ints("strides", 1, 1), Ints("pads", 0, 0, 0, 0)),
        ["averagepool_k1s2_subsample"] = One(9, "AveragePool", [Img], Ints("kernel_shape", 1, 1), Ints("strides", 2, 2)),
        ["globalaveragepool"] = One(7, "GlobalAveragePool", [Img]),
        ["flatten_axis1"] = One(7, "Flatten", [Img]),
        ["flatten_axis0"] = One(9, "Flatten", [Img], Int("axis", 0)),
        ["flatten_axis_neg"] = One(13, "Flatten", [Img], Int("axis", -2)),
        ["reshape_zero_minus1"] = With(7, "Reshape", ["x0", "s"], [Img], [Longs("s", 0, -1, 11)]),
        ["reshape_allowzero_opset14"] = With(14, "Reshape", ["x0", "s"], [Img], [Longs("s", 6, 99)], Int("allowzero", 1)),
        ["gemm_transB_bias"] = With(7, "Gemm", ["x0", "w", "c"], [[3, 8]], [Floats("w", [5, 8], 1), Floats("c", [5], 2)], Int("transB", 1)),
        ["gemm_transA_alpha_beta"] = With(11, "Gemm", ["x0", "w", "c"], [[8, 3]], [Floats("w", [8, 5], 3), Floats("c", [3, 5], 4)], Int("transA", 1), Float("alpha", 0.5f), Float("beta", 2f)),
        ["gemm_no_c_opset13"] = With(13, "Gemm", ["x0", "w"], [[4, 6]], [Floats("w", [6, 2], 5)]),
        ["gemm_scalar_c"] = With(9, "Gemm", ["x0", "w", "c"], [[4, 6]], [Floats("w", [6, 2], 6), Floats("c", [1], 7)]),
        ["matmul_2d"] = With(13, "MatMul", ["x0", "w"], [[4, 6]], [Floats("w", [6, 3], 1)]),
        ["matmul_batched_broadcast"] = One(9, "MatMul", [[2, 1, 3, 4], [5, 4, 2]]),
        ["matmul_vector_left"] = One(13, "MatMul", [[4], [2, 4, 3]]),
        ["matmul_vector_right"] = One(13, "MatMul", [[2, 3, 4], [4]]),
        ["softmax_opset7_coerced_2d"] = One(7, "Softmax", [Img]),
        ["softmax_opset11_axis2"] = One(11, "Softmax", [Img], Int("axis", 2)),
        ["softmax_opset13_axis1"] = One(13, "Softmax", [Img], Int("axis", 1)),
        ["softmax_opset13_default"] = One(13, "Softmax", [[4, 10]]),
        ["pad_opset7_attr"] = One(7, "Pad", [Img], Ints("pads", 0, 1, 2, 0, 0, 2, 1, 3), Float("value", 1.5f)),
        ["pad_opset11_inputs"] = With(11, "Pad", ["x0", "p", "v"], [Img], [Longs("p", 0, 2, 0, 1, 0, 3, 1, 0), Floats("v", [], 9)]),
        ["pad_opset13_reflect"] = With(13, "Pad", ["x0", "p"], [Img], [Longs("p", 0, 0, 2, 1, 0, 0, 1, 3)], String("mode", "reflect")),
        ["pad_opset13_edge_negative"] = With(13, "Pad", ["x0", "p"], [Img], [Longs("p", 0, 0, -1, 2, 0, 0, 2, -2)], String("mode", "edge")),
        ["pad_opset18_axes"] = With(18, "Pad", ["x0", "p", "", "a"], [Img], [Longs("p", 1, 2, 3, 4), Longs("a", 1, -1)]),
        ["identity"] = One(13, "Identity", [Img]),
        ["constant_tensor_add"] = new(9, [Node("Constant", [], ["k"], Tensor("value", Floats("kv", [3, 1, 1], 3))), Node("Add", ["x0", "k"], ["y0"])], [Img], []),
        ["constant_value_floats_mul"] = new(13, [Node("Constant", [], ["k"], Floats("value_floats", 0.5f, -2f, 3f, 1f, 0f, 7f, 1f, 1f, 2f, 3f, 4f)), Node("Mul", ["x0", "k"], ["y0"])], [Img], []),
        ["split_opset7_attr"] = new(7, [Node("Split", ["x0"], ["y0", "y1", "y2"], Int("axis", 1), Ints("split", 1, 1, 1))], [Img], [], 3),
        ["split_opset13_input"] = new(13, [Node("Split", ["x0", "s"], ["y0", "y1"], Int("axis", -1))], [Img], [Longs("s", 4, 7)], 2),
        ["split_opset13_equal"] = new(13, [Node("Split", ["x0"], ["y0", "y1", "y2"], Int("axis", 1))], [Img], [], 3),
        ["split_opset18_num_outputs_uneven"] = new(18, [Node("Split", ["x0"], ["y0", "y1", "y2"], Int("axis", 3), Int("num_outputs", 3))], [Img], [], 3),
        ["concat_three"] = One(7, "Concat", [Img, [2, 1, 9, 11], [2, 4, 9, 11]], Int("axis", 1)),
        ["concat_negative_axis"] = One(13, "Concat", [Img, [2, 3, 9, 2]], Int("axis", -1)),
        ["slice_opset9_attrs"] = One(9, "Slice", [Img], Ints("starts", 1, -5), Ints("ends", 3, 1000), Ints("axes", 1, 3)),
        ["slice_opset13_steps"] = With(13, "Slice", ["x0", "s", "e", "a", "t"], [Img], [Longs("s", 0, 0), Longs("e", long.MaxValue, long.MaxValue), Longs("a", 2, 3), Longs("t", 2, 2)]),
        ["slice_opset13_negative_step"] = With(13, "Slice", ["x0", "s", "e", "a", "t"], [Img], [Longs("s", -1), Longs("e", long.MinValue), Longs("a", 3), Longs("t", -3)]),
        ["preprocess_split_concat_sub"] = new(8, [
            Node("Split", ["x0"], ["r", "g", "b"], Int("axis", 1), Ints("split", 1, 1, 1)),
            Node("Concat", ["b", "g", "r"], ["bgr"], Int("axis", 1)),
            Node("Sub", ["bgr", "mean"], ["y0"])], [[1, 3, 8, 8]], [Floats("mean", [1, 3, 8, 8], 4)]),
    };

    private static TensorProto Positive(string name, int n)
    {
        var t = Floats(name, [n], 42);
        for (int i = 0; i < n; i++) t.FloatData[i] = 0.5f + Math.Abs(t.FloatData[i]);
        return t;
    }

    public static TheoryData<string> Names => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void Operator_matches_onnx_runtime(string name)
    {
        var c = Cases[name];
        var bytes = Build(c.Opset, c.Nodes, c.Inputs, c.Inits, c.Outputs);
        var inputs = c.Inputs.Select((s, i) => Ort.Random(100 + i, s)).ToArray();
        var expected = Ort.RunAll(bytes, inputs);
        var graph = OnnxGraph.FromBytes(bytes, name);
        var feeds = inputs.Select((t, i) => ($"x{i}", t)).ToDictionary(p => p.Item1, p => p.t);
        // A first run on other data leaves its freed buffers in the graph's pool, filled with NaN: the second run's
        // outputs must not depend on what they held.
        BufferPool.Poison = true;
        graph.Run(c.Inputs.Select((sh, i) => ($"x{i}", Ort.Random(900 + i, sh))).ToDictionary(p => p.Item1, p => p.Item2));
        var actual = graph.Run(feeds);
        Assert.Equal(c.Outputs, expected.Length);
        for (int o = 0; o < c.Outputs; o++)
        {
            var a = actual[$"y{o}"];
            Assert.Equal(expected[o].ShapeArray, a.ShapeArray);
            var (diff, scale) = Ort.Compare(a, expected[o]);
            Assert.True(diff <= 1e-5 * Math.Max(1, scale), $"{name} output {o}: max |diff| {diff:E3} at scale {scale:E3}");
        }
    }

    [Fact]
    public void Unsupported_operators_are_listed_in_one_error()
    {
        var bytes = Build(13, [
            Node("Relu", ["x0"], ["a"]),
            new NodeProto { OpType = "Tanh", Name = "squash", Input = { "a" }, Output = { "b" } },
            new NodeProto { OpType = "LeakyRelu", Name = "leaky", Input = { "b" }, Output = { "c" } },
            new NodeProto { OpType = "Custom", Domain = "com.example", Name = "mine", Input = { "c" }, Output = { "y0" } },
        ], [Img], []);
        var e = Assert.Throws<InvalidDataException>(() => OnnxGraph.FromBytes(bytes, "three.onnx"));
        Assert.StartsWith("three.onnx: 3 nodes use operators", e.Message);
        Assert.Contains("'squash' (Tanh)", e.Message);
        Assert.Contains("'leaky' (LeakyRelu)", e.Message);
        Assert.Contains("'mine' (com.example.Custom)", e.Message);
        Assert.DoesNotContain("(Relu)", e.Message.Split("Supported:")[0]);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(22)]
    public void Opsets_outside_7_to_21_are_rejected(int opset)
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxGraph.FromBytes(Single("Relu", opset, [Img]), "m.onnx"));
        Assert.Contains($"opset {opset} is not supported", e.Message);
    }

    [Fact]
    public void Shape_mismatch_names_the_node_and_the_shapes()
    {
        var bytes = Build(13, [Node("Add", ["x0", "x1"], ["y0"])], [[2, 3], [4]], []);
        var graph = OnnxGraph.FromBytes(bytes, "add.onnx");
        var e = Assert.Throws<ArgumentException>(() => graph.Run(new Dictionary<string, Tensor<float>> { ["x0"] = new(2, 4), ["x1"] = new(4) }));
        Assert.Contains("input 'x0' has shape (2, 4), the model expects (2, 3)", e.Message);

        var loose = Build(13, [Node("Add", ["x0", "x1"], ["y0"])], [null!, null!], []);
        var g2 = OnnxGraph.FromBytes(loose, "add.onnx");
        var e2 = Assert.Throws<InvalidDataException>(() => g2.Run(new Dictionary<string, Tensor<float>> { ["x0"] = new(2, 3), ["x1"] = new(4) }));
        Assert.Contains("node 'add_node' (Add)", e2.Message);
        Assert.Contains("(2, 3) and (4) do not broadcast", e2.Message);
    }
}
