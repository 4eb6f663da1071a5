using System.Numerics;
using ResNetSharp.Tensors;

namespace ResNetSharp.NN;

/// <summary>Weight initialisers, as torchvision's ResNet uses them.</summary>
public static class Init
{
    /// <summary>N(0, 2/fan_out) with fan_out = OC·KH·KW: kaiming_normal_(mode="fan_out", nonlinearity="relu").</summary>
    public static void KaimingNormalFanOut<T>(Tensor<T> weight, Random rng) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int fanOut = weight.Dim(0) * (weight.Length / Math.Max(1, weight.Dim(0) * weight.Dim(1)));
        double std = Math.Sqrt(2.0 / Math.Max(1, fanOut));
        var s = weight.Span;
        for (int i = 0; i < s.Length; i++) s[i] = T.CreateTruncating(std * StandardNormal(rng));
    }

    /// <summary>U(−bound, bound): PyTorch's default for Linear weights and biases uses bound = 1/√fan_in.</summary>
    public static void Uniform<T>(Tensor<T> t, double bound, Random rng) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = T.CreateTruncating((rng.NextDouble() * 2 - 1) * bound);
    }

    /// <summary>Box–Muller on two uniforms; 1 − U keeps the logarithm finite.</summary>
    public static double StandardNormal(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
