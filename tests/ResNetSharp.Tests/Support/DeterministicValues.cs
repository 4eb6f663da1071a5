using System.Text;
using ResNetSharp.NN;

namespace ResNetSharp.Tests.Support;

/// <summary>
/// The name-seeded value generator of tools/golden/README.md, bit for bit the same as make_golden.py's, so that whole
/// models can be checked against PyTorch without committing their weights.
/// </summary>
public static class DeterministicValues
{
    public static uint Fnv1a32(string name)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(name)) { h ^= b; h *= 16777619; }
        return h;
    }

    public static uint Hash(uint seed, uint i)
    {
        uint h = unchecked(i * 0x9E3779B1u + seed * 0x85EBCA77u);
        h ^= h >> 15; h = unchecked(h * 0x2C1B3C6Du);
        h ^= h >> 12; h = unchecked(h * 0x297A2D39u);
        h ^= h >> 15;
        return h;
    }

    /// <summary>det(name, n): uniform values in [−1, 1), exact in float32.</summary>
    public static float[] Det(string name, int n)
    {
        uint seed = Fnv1a32(name);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((Hash(seed, (uint)i) >> 8) / 16777216.0 * 2 - 1);
        return v;
    }

    /// <summary>The value rule for a parameter or buffer by its state-dict name and shape.</summary>
    public static float[] ForParameter(string name, int[] shape)
    {
        int n = shape.Aggregate(1, (a, d) => a * d);
        var d = Det(name, n);
        float scale; float offset = 0;
        if (name.EndsWith(".weight") && shape.Length == 4) scale = (float)Math.Sqrt(6.0 / (shape[1] * shape[2] * shape[3]));
        else if (name.EndsWith(".weight") && shape.Length == 2) scale = (float)Math.Sqrt(3.0 / shape[1]);
        else if (name.EndsWith(".weight")) { scale = 0.25f; offset = 1; }
        else if (name.EndsWith(".bias")) scale = 0.1f;
        else if (name.EndsWith(".running_mean")) scale = 0.1f;
        else if (name.EndsWith(".running_var")) { scale = 0.5f; offset = 1; }
        else throw new ArgumentException($"no rule for {name}");
        for (int i = 0; i < n; i++)
        {
            float product = d[i] * scale;  // one float32 multiply, then one float32 add, as numpy does
            d[i] = offset == 0 ? product : offset + product;
        }
        return d;
    }

    /// <summary>Sets every parameter and BN buffer of a model by the rule.</summary>
    public static void Apply(Module<float> model)
    {
        foreach (var (name, p) in model.NamedParameters())
            ForParameter(name, p.Value.ShapeArray).CopyTo(p.Value.Span);
        foreach (var (name, b) in model.NamedBuffers())
            ForParameter(name, b.ShapeArray).CopyTo(b.Span);
    }
}
