using Onnx;

namespace ResNetSharp.Onnx.Ops;

/// <summary>A node's attributes by name, with typed getters that name the node when an attribute is malformed.</summary>
internal sealed class Attrs
{
    private readonly Dictionary<string, AttributeProto> _byName = new();

    public Attrs(NodeProto node, string where)
    {
        Where = where;
        foreach (var a in node.Attribute) _byName[a.Name] = a;
    }

    public string Where { get; }
    public bool Has(string name) => _byName.ContainsKey(name);

    public long Int(string name, long fallback) => _byName.TryGetValue(name, out var a) ? a.I : fallback;

    public long[]? Ints(string name) => _byName.TryGetValue(name, out var a) ? a.Ints.ToArray() : null;

    public float Float(string name, float fallback) => _byName.TryGetValue(name, out var a) ? a.F : fallback;

    public float[]? Floats(string name) => _byName.TryGetValue(name, out var a) ? a.Floats.ToArray() : null;

    public string String(string name, string fallback) => _byName.TryGetValue(name, out var a) ? a.S.ToStringUtf8() : fallback;

    public TensorProto? Tensor(string name) => _byName.TryGetValue(name, out var a) ? a.T : null;

    /// <summary>An attribute that must be given; its absence is an error naming the node.</summary>
    public long[] RequiredInts(string name) => Ints(name) ?? throw new InvalidDataException($"{Where}: attribute '{name}' is required");

    public int[] IntsOr(string name, int count, int fallback)
    {
        var v = Ints(name);
        if (v is null) return Enumerable.Repeat(fallback, count).ToArray();
        if (v.Length != count) throw new InvalidDataException($"{Where}: attribute '{name}' has {v.Length} values, expected {count}");
        return v.Select(x => checked((int)x)).ToArray();
    }
}
