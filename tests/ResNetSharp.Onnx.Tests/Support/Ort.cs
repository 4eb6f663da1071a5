using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx.Tests.Support;

/// <summary>ONNX Runtime as the reference: runs a model file on one input, single-threaded, all optimisations off.</summary>
public static class Ort
{
    public static Tensor<float> Run(string path, Tensor<float> input, string? output = null) => Run(File.ReadAllBytes(path), input, output);

    public static Tensor<float> Run(byte[] model, Tensor<float> input, string? output = null) => RunAll(model, [input], output)[0];

    public static Tensor<float>[] RunAll(byte[] model, Tensor<float>[] inputs, string? output = null)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new InferenceSession(model, options);
        var names = session.InputMetadata.Keys.ToList();
        var feeds = inputs.Select((t, i) => NamedOnnxValue.CreateFromTensor(names[i], new DenseTensor(t.Span.ToArray(), t.ShapeArray))).ToList();
        using var results = session.Run(feeds);
        return results.Where(r => output is null || r.Name == output).Select(r =>
        {
            var t = r.AsTensor<float>();
            return Tensor<float>.FromArray(t.ToArray(), t.Dimensions.ToArray());
        }).ToArray();
    }

    /// <summary>Largest |a − b| and the output's scale max |b|.</summary>
    public static (double MaxDiff, double Scale) Compare(Tensor<float> actual, Tensor<float> expected)
    {
        Assert.Equal(expected.ShapeArray, actual.ShapeArray);
        double diff = 0, scale = 0;
        var a = actual.Span; var b = expected.Span;
        for (int i = 0; i < a.Length; i++)
        {
            if (float.IsNaN(a[i]) != float.IsNaN(b[i])) return (double.PositiveInfinity, 0);
            diff = Math.Max(diff, Math.Abs((double)a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs((double)b[i]));
        }
        return (diff, scale);
    }

    /// <summary>Asserts the largest absolute difference is within 1e-4 of the output's scale (max |expected|).</summary>
    public static void AssertClose(Tensor<float> actual, Tensor<float> expected, string what, double relative = 1e-4)
    {
        var (diff, scale) = Compare(actual, expected);
        Assert.True(scale > 0, $"{what}: the reference output is all zero, so the comparison proves nothing");
        Assert.True(diff <= relative * scale, $"{what}: max |diff| {diff:E3} exceeds {relative:E0} x scale {scale:E3}");
    }

    public static Tensor<float> Random(int seed, params int[] shape)
    {
        var rng = new Random(seed);
        var t = new Tensor<float>(shape);
        foreach (ref float v in t.Span) v = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }
}
