using System.Numerics;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.IO;

/// <summary>
/// PyTorch-style state dicts: every parameter and BN buffer by its dotted name, as float32 tensors
/// (num_batches_tracked as int64). Names are torchvision's, so a state dict saved from PyTorch loads directly.
/// </summary>
public static class StateDict
{
    /// <summary>The model's state as safetensors entries, in registration order.</summary>
    public static List<KeyValuePair<string, SafeTensor>> From<T>(Module<T> model) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var list = new List<KeyValuePair<string, SafeTensor>>();
        foreach (var (name, p) in model.NamedParameters()) list.Add(new(name, ToSafeTensor(p.Value)));
        foreach (var (name, b) in model.NamedBuffers()) list.Add(new(name, ToSafeTensor(b)));
        foreach (var bn in model.Modules().OfType<BatchNorm2d<T>>())
            list.Add(new($"{bn.Name}.num_batches_tracked", new SafeTensor("I64", [], BitConverter.GetBytes(bn.NumBatchesTracked))));
        return list;
    }

    /// <summary>
    /// Copies every entry into the model. Every parameter and buffer must be present with its exact shape;
    /// unexpected names are an error too unless <paramref name="strict"/> is false (PyTorch's load_state_dict rule).
    /// </summary>
    public static void Load<T>(Module<T> model, IReadOnlyDictionary<string, SafeTensor> state, bool strict = true)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (targets, norms) = Targets(model);
        CheckNames(targets.Select(t => t.Name).ToHashSet(), state.Keys, norms.Keys, strict);
        foreach (var (name, value) in targets)
        {
            var t = state[name];
            if (!t.Shape.AsSpan().SequenceEqual(value.Shape))
                throw new InvalidDataException($"{name}: shape {Tensor<T>.ShapeString(t.Shape)} in the file, the model has {Tensor<T>.ShapeString(value.Shape)}");
            var data = t.ToFloat32();
            var dst = value.Span;
            for (int i = 0; i < data.Length; i++) dst[i] = T.CreateTruncating(data[i]);
        }
        foreach (var (key, bn) in norms)
            if (state.TryGetValue(key, out var t) && t.ElementCount == 1) bn.NumBatchesTracked = t.ToInt64()[0];
        model.StateChanged();
    }

    /// <summary>
    /// Loads a safetensors file straight into the model: each tensor's bytes are read into the parameter's own memory
    /// (float32 files into float models), so the whole file is never held in memory besides the model.
    /// </summary>
    public static void Load<T>(Module<T> model, string path, bool strict = true) where T : unmanaged, IFloatingPointIeee754<T>
    {
        using var stream = File.OpenRead(path);
        var header = SafeTensors.ReadHeader(stream, path);
        var byName = header.Entries.ToDictionary(e => e.Name);
        var (targets, norms) = Targets(model);
        CheckNames(targets.Select(t => t.Name).ToHashSet(), byName.Keys, norms.Keys, strict);
        foreach (var (name, value) in targets)
        {
            var e = byName[name];
            if (!e.Shape.AsSpan().SequenceEqual(value.Shape))
                throw new InvalidDataException($"{name}: shape {Tensor<T>.ShapeString(e.Shape)} in {path}, the model has {Tensor<T>.ShapeString(value.Shape)}");
            stream.Position = header.DataStart + e.Begin;
            if (typeof(T) == typeof(float) && e.DType == "F32" && BitConverter.IsLittleEndian)
                stream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(value.Span));
            else
            {
                var data = new byte[e.End - e.Begin];
                stream.ReadExactly(data);
                var values = new SafeTensor(e.DType, e.Shape, data).ToFloat32();
                var dst = value.Span;
                for (int i = 0; i < values.Length; i++) dst[i] = T.CreateTruncating(values[i]);
            }
        }
        Span<byte> b = stackalloc byte[8];
        foreach (var (key, bn) in norms)
            if (byName.TryGetValue(key, out var e) && e.DType == "I64" && e.End - e.Begin == 8)
            {
                stream.Position = header.DataStart + e.Begin;
                stream.ReadExactly(b);
                bn.NumBatchesTracked = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(b);
            }
        model.StateChanged();
    }

    /// <summary>Every tensor a state dict must fill, by name, and the BN layers by their num_batches_tracked key.</summary>
    private static (List<(string Name, Tensor<T> Value)> Targets, Dictionary<string, BatchNorm2d<T>> Norms) Targets<T>(Module<T> model)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        (model.NamedParameters().Select(p => (p.Name, p.Parameter.Value)).Concat(model.NamedBuffers()).ToList(),
         model.Modules().OfType<BatchNorm2d<T>>().ToDictionary(b => $"{b.Name}.num_batches_tracked"));

    private static void CheckNames(HashSet<string> known, IEnumerable<string> present, IEnumerable<string> optional, bool strict)
    {
        var presentSet = present.ToHashSet();
        var optionalSet = optional.ToHashSet();
        var missing = known.Where(n => !presentSet.Contains(n)).ToList();
        var unexpected = presentSet.Where(k => !known.Contains(k) && !optionalSet.Contains(k)).ToList();
        if (missing.Count > 0 || (strict && unexpected.Count > 0))
            throw new InvalidDataException(
                (missing.Count > 0 ? $"missing {missing.Count} entries ({string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")})" : "") +
                (missing.Count > 0 && strict && unexpected.Count > 0 ? "; " : "") +
                (strict && unexpected.Count > 0 ? $"unexpected {unexpected.Count} entries ({string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? ", ..." : "")})" : ""));
    }

    private static SafeTensor ToSafeTensor<T>(Tensor<T> t) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var values = new float[t.Length];
        var src = t.Span;
        for (int i = 0; i < values.Length; i++) values[i] = float.CreateTruncating(src[i]);
        return SafeTensor.FromFloat32(values, t.ShapeArray);
    }
}
