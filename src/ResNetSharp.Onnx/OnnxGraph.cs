using Onnx;
using ResNetSharp.Onnx.Ops;
using ResNetSharp.Tensors;

namespace ResNetSharp.Onnx;

/// <summary>
/// An ONNX model compiled for ResNetSharp's kernels: initializers decoded once, Constant nodes evaluated, each
/// BatchNormalization that follows a Conv folded into the convolution's weights and bias, every other node compiled
/// to one <see cref="OpSet"/> operator. Runs nodes in file order (ONNX requires topological order), freeing each
/// intermediate after its last use. Not thread-safe.
/// </summary>
public sealed class OnnxGraph
{
    private sealed record Step(NodeProto Node, string Where, string[] Inputs, string[] Outputs, OpFn Run);

    private readonly Dictionary<string, Value> _constants;
    private readonly List<Step> _steps = [];
    private readonly Dictionary<string, int> _lastUse = new();
    private readonly Dictionary<string, TypeProto> _inputTypes = new();
    private readonly BufferPool _pool = new();
    private HashSet<float[]> _constantArrays = new(ReferenceEqualityComparer.Instance);

    private OnnxGraph(ModelProto model, string source)
    {
        Source = source;
        Model = model;
        var graph = model.Graph;
        Opset = DefaultOpset(model, source);
        MetadataProps = model.MetadataProps.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Last().Value);

        // One error listing every unsupported node, so a user sees the whole gap at once.
        var unsupported = graph.Node.Where(n => !OpSet.IsSupported(n)).Select((n, i) => (Name(n, graph.Node.IndexOf(n)), Type(n))).ToList();
        if (unsupported.Count > 0)
            throw new InvalidDataException(
                $"{source}: {unsupported.Count} node{(unsupported.Count == 1 ? "" : "s")} use{(unsupported.Count == 1 ? "s" : "")} operators ResNetSharp does not support: " +
                string.Join(", ", unsupported.Select(u => $"'{u.Item1}' ({u.Item2})")) +
                $". Supported: {string.Join(", ", OpSet.Supported.Order(StringComparer.Ordinal))}");

        _constants = new Dictionary<string, Value>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer)
        {
            if (string.IsNullOrEmpty(t.Name)) throw new InvalidDataException($"{source}: an initializer has no name");
            _constants[t.Name] = OnnxFile.ToValue(t, source);
        }
        if (graph.SparseInitializer.Count > 0) throw new InvalidDataException($"{source}: sparse initializers are not supported");

        Inputs = graph.Input.Where(i => !_constants.ContainsKey(i.Name)).Select(i => i.Name).ToList();
        foreach (var i in graph.Input) _inputTypes[i.Name] = i.Type;
        Outputs = graph.Output.Select(o => o.Name).ToList();
        if (Inputs.Count == 0) throw new InvalidDataException($"{source}: the graph has no inputs besides its initializers");
        if (Outputs.Count == 0) throw new InvalidDataException($"{source}: the graph has no outputs");

        var nodes = graph.Node.ToList();
        FoldBatchNorms(nodes);
        var fusedRelu = FuseRelus(nodes);
        Compile(nodes, fusedRelu);
        _constantArrays = new HashSet<float[]>(_constants.Values.Where(v => v.IsFloat).Select(v => v.F!), ReferenceEqualityComparer.Instance);
    }

    /// <summary>Where the model came from, for messages (the file path).</summary>
    public string Source { get; }
    /// <summary>The parsed model (initializers included).</summary>
    internal ModelProto Model { get; }
    /// <summary>The opset of the default (ai.onnx) domain.</summary>
    public int Opset { get; }
    public IReadOnlyDictionary<string, string> MetadataProps { get; }
    /// <summary>Graph inputs that are not initializers: what the caller feeds.</summary>
    public IReadOnlyList<string> Inputs { get; }
    public IReadOnlyList<string> Outputs { get; }
    /// <summary>The nodes after folding, in execution order (op type, name, inputs, outputs).</summary>
    internal IEnumerable<NodeProto> Nodes => _steps.Select(s => s.Node);

    public static OnnxGraph Load(string path) => new(OnnxFile.Read(path), path);

    public static OnnxGraph FromBytes(byte[] bytes, string source) => new(OnnxFile.Parse(bytes, source), source);

    internal static OnnxGraph FromModel(ModelProto model, string source) => new(model, source);

    /// <summary>The declared dimensions of an input: a number, or null for a symbolic or unknown dimension. Null when the rank is unknown.</summary>
    public int?[]? InputShape(string name)
    {
        if (!_inputTypes.TryGetValue(name, out var t) || t.TensorType?.Shape is null) return null;
        return t.TensorType.Shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0 ? (int?)checked((int)d.DimValue) : null).ToArray();
    }

    /// <summary>A constant (initializer or folded Constant node) by name, as float data; null if there is none.</summary>
    internal (int[] Shape, float[] Data)? Constant(string name) =>
        _constants.TryGetValue(name, out var v) && v.IsFloat ? (v.Shape, v.F!) : null;

    /// <summary>The node that produces <paramref name="value"/>, or null for inputs and constants.</summary>
    internal NodeProto? Producer(string value) => _steps.LastOrDefault(s => s.Outputs.Contains(value))?.Node;

    /// <summary>When set, each run appends (node, operator, milliseconds) per node executed.</summary>
    public List<(string Node, string OpType, double Milliseconds)>? Profile { get; set; }

    /// <summary>Runs the graph on one float input and returns its first output (a new tensor the caller owns).</summary>
    public Tensor<float> Run(Tensor<float> input) => Run(new Dictionary<string, Tensor<float>> { [Inputs[0]] = input }, [Outputs[0]])[Outputs[0]];

    /// <summary>
    /// Runs the graph until every requested value (graph outputs by default, or any intermediate value) is computed.
    /// Inputs are checked against the declared rank and fixed dimensions.
    /// </summary>
    public Dictionary<string, Tensor<float>> Run(IReadOnlyDictionary<string, Tensor<float>> inputs, IReadOnlyList<string>? wanted = null)
    {
        wanted ??= Outputs;
        var previousPool = Value.Pool;
        Value.Pool = _pool;
        try { return RunPooled(inputs, wanted); }
        finally { Value.Pool = previousPool; }
    }

    private Dictionary<string, Tensor<float>> RunPooled(IReadOnlyDictionary<string, Tensor<float>> inputs, IReadOnlyList<string> wanted)
    {
        var env = new Dictionary<string, Value>(_constants, StringComparer.Ordinal);
        // How many live names refer to each float array this run made; at zero the array goes back to the pool.
        var refs = new Dictionary<float[], int>(ReferenceEqualityComparer.Instance);
        void Retain(Value v) { if (v.F is { } a && !_constantArrays.Contains(a)) refs[a] = refs.GetValueOrDefault(a) + 1; }
        void Release(Value v)
        {
            if (v.F is not { } a || !refs.TryGetValue(a, out int n)) return;
            if (n > 1) refs[a] = n - 1;
            else { refs.Remove(a); _pool.Return(a); }
        }
        foreach (var name in Inputs)
        {
            if (!inputs.TryGetValue(name, out var t))
                throw new ArgumentException($"{Source}: input '{name}' was not given");
            CheckInput(name, t.Shape);
            env[name] = new Value(t.ShapeArray, t.Span.ToArray());
            Retain(env[name]);
        }
        var missing = new HashSet<string>(wanted.Where(w => !env.ContainsKey(w)), StringComparer.Ordinal);
        var keep = new HashSet<string>(wanted, StringComparer.Ordinal);
        for (int si = 0; si < _steps.Count && missing.Count > 0; si++)
        {
            var s = _steps[si];
            var args = new Value?[s.Inputs.Length];
            for (int i = 0; i < args.Length; i++)
            {
                if (s.Inputs[i].Length == 0) continue;
                if (!env.TryGetValue(s.Inputs[i], out args[i]))
                    throw new InvalidDataException($"{s.Where}: input '{s.Inputs[i]}' is not computed by any earlier node");
            }
            Value[] results;
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            try { results = s.Run(args); }
            catch (InvalidDataException e) when (!e.Message.StartsWith(s.Where, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{s.Where}: {e.Message}", e);
            }
            Profile?.Add((s.Node.Name, s.Node.OpType, System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds));
            for (int o = 0; o < s.Outputs.Length; o++)
            {
                if (s.Outputs[o].Length == 0) continue;
                if (o >= results.Length) throw new InvalidDataException($"{s.Where}: output {o} ('{s.Outputs[o]}') is not produced by this importer");
                if (env.Remove(s.Outputs[o], out var old)) Release(old);
                env[s.Outputs[o]] = results[o];
                Retain(results[o]);
                missing.Remove(s.Outputs[o]);
            }
            foreach (var name in s.Inputs)
                if (name.Length > 0 && _lastUse.TryGetValue(name, out int last) && last == si && !keep.Contains(name) && !_constants.ContainsKey(name)
                    && env.Remove(name, out var dead))
                    Release(dead);
        }
        if (missing.Count > 0) throw new InvalidDataException($"{Source}: no node computes {string.Join(", ", missing.Select(m => $"'{m}'"))}");
        var result = new Dictionary<string, Tensor<float>>();
        foreach (var w in wanted)
        {
            var v = env[w];
            result[w] = Tensor<float>.FromArray(v.IsFloat ? v.F! : v.L!.Select(l => (float)l).ToArray(), v.Shape);
        }
        // Copied out: the arrays go back to the pool for the next run.
        foreach (var v in env.Values) Release(v);
        return result;
    }

    private void CheckInput(string name, ReadOnlySpan<int> shape)
    {
        var declared = InputShape(name);
        if (declared is null) return;
        bool ok = declared.Length == shape.Length;
        for (int i = 0; ok && i < declared.Length; i++) ok = declared[i] is null || declared[i] == shape[i];
        if (!ok)
            throw new ArgumentException($"{Source}: input '{name}' has shape {Value.Str(shape)}, the model expects " +
                "(" + string.Join(", ", declared.Select(d => d?.ToString() ?? "?")) + ")");
    }

    private static int DefaultOpset(ModelProto model, string source)
    {
        var imports = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").ToList();
        if (imports.Count == 0) throw new InvalidDataException($"{source}: the model imports no opset of the default ONNX domain");
        long v = imports.Max(o => o.Version);
        if (v < OpSet.MinOpset || v > OpSet.MaxOpset)
            throw new InvalidDataException($"{source}: opset {v} is not supported (ResNetSharp reads opsets {OpSet.MinOpset} to {OpSet.MaxOpset})");
        return (int)v;
    }

    private static string Type(NodeProto n) => n.Domain is "" or "ai.onnx" ? n.OpType : $"{n.Domain}.{n.OpType}";

    private static string Name(NodeProto n, int index) => string.IsNullOrEmpty(n.Name) ? $"#{index} ({n.OpType} → {string.Join(", ", n.Output)})" : n.Name;

    private string Where(NodeProto n, int index) => $"{Source}: node '{Name(n, index)}' ({Type(n)})";

    /// <summary>
    /// Conv → BatchNormalization with constant parameters, where the convolution's output feeds only the BN, becomes one
    /// Conv with W' = W·s (per output channel) and B' = (B − mean)·s + β, s = γ/√(var + ε): the BN costs nothing at run time.
    /// </summary>
    private void FoldBatchNorms(List<NodeProto> nodes)
    {
        var consumers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var n in nodes) foreach (var i in n.Input) consumers[i] = consumers.GetValueOrDefault(i) + 1;
        var outputs = new HashSet<string>(Outputs, StringComparer.Ordinal);
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++) foreach (var o in nodes[i].Output) producer[o] = i;
        var removed = new HashSet<int>();
        for (int bi = 0; bi < nodes.Count; bi++)
        {
            var bn = nodes[bi];
            if (bn.OpType != "BatchNormalization" || bn.Input.Count < 5 || bn.Output.Count(o => o.Length > 0) != 1) continue;
            if (!producer.TryGetValue(bn.Input[0], out int ci) || nodes[ci].OpType != "Conv") continue;
            var conv = nodes[ci];
            string x = bn.Input[0];
            if (consumers.GetValueOrDefault(x) != 1 || outputs.Contains(x) || conv.Output.Count != 1) continue;
            if (bn.Attribute.Any(a => (a.Name == "spatial" && a.I != 1) || (a.Name == "training_mode" && a.I != 0))) continue;
            if (!_constants.TryGetValue(conv.Input[1], out var w) || !w.IsFloat || w.Rank != 4) continue;
            Value? b = null;
            if (conv.Input.Count > 2 && conv.Input[2].Length > 0 && (!_constants.TryGetValue(conv.Input[2], out b) || !b.IsFloat)) continue;
            var p = new Value[4];
            bool constant = true;
            for (int k = 0; k < 4; k++) constant &= _constants.TryGetValue(bn.Input[k + 1], out p[k]!) && p[k].IsFloat;
            if (!constant) continue;
            int m = w.Shape[0];
            if (p.Any(v => v.Length != m)) continue;
            float eps = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            var (s, t) = OpSet.FoldNorm(p[0], p[1], p[2], p[3], eps, m, new Attrs(bn, Where(bn, bi)));
            int per = w.Length / m;
            var wf = new float[w.Length]; var bf = new float[m];
            for (int oc = 0; oc < m; oc++)
            {
                for (int j = 0; j < per; j++) wf[oc * per + j] = w.F![oc * per + j] * s[oc];
                bf[oc] = (b?.F![oc] ?? 0f) * s[oc] + t[oc];
            }
            string wName = $"{conv.Input[1]}::folded:{bi}", bName = $"{bn.Output[0]}::bias:{bi}";
            _constants[wName] = new Value(w.Shape, wf);
            _constants[bName] = new Value([m], bf);
            var fused = conv.Clone();
            fused.Input.Clear();
            fused.Input.Add(conv.Input[0]); fused.Input.Add(wName); fused.Input.Add(bName);
            fused.Output.Clear(); fused.Output.Add(bn.Output[0]);
            nodes[ci] = fused;
            removed.Add(bi);
        }
        for (int i = nodes.Count - 1; i >= 0; i--) if (removed.Contains(i)) nodes.RemoveAt(i);
    }

    /// <summary>
    /// A Relu whose input comes from a Conv, BatchNormalization or Add that feeds nothing else is applied in place to
    /// that node's output (which the node has just allocated): one pass over memory and one buffer fewer.
    /// </summary>
    private HashSet<NodeProto> FuseRelus(List<NodeProto> nodes)
    {
        var consumers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var n in nodes) foreach (var i in n.Input) consumers[i] = consumers.GetValueOrDefault(i) + 1;
        var outputs = new HashSet<string>(Outputs, StringComparer.Ordinal);
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++) foreach (var o in nodes[i].Output) producer[o] = i;
        var fused = new HashSet<NodeProto>();
        var removed = new HashSet<int>();
        for (int ri = 0; ri < nodes.Count; ri++)
        {
            var relu = nodes[ri];
            if (relu.OpType != "Relu" || relu.Input.Count != 1 || relu.Output.Count != 1) continue;
            string x = relu.Input[0];
            if (!producer.TryGetValue(x, out int pi) || consumers.GetValueOrDefault(x) != 1 || outputs.Contains(x)) continue;
            var p = nodes[pi];
            if (p.OpType is not ("Conv" or "BatchNormalization" or "Add") || p.Output.Count(o => o.Length > 0) != 1 || p.Output[0] != x || fused.Contains(p)) continue;
            var merged = p.Clone();
            merged.Output[0] = relu.Output[0];
            nodes[pi] = merged;
            fused.Add(merged);
            removed.Add(ri);
        }
        for (int i = nodes.Count - 1; i >= 0; i--) if (removed.Contains(i)) nodes.RemoveAt(i);
        return fused;
    }

    private void Compile(List<NodeProto> nodes, HashSet<NodeProto> fusedRelu)
    {
        var defined = new HashSet<string>(_constants.Keys.Concat(Inputs), StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
        {
            var n = nodes[i];
            string where = Where(n, i);
            foreach (var input in n.Input)
                if (input.Length > 0 && !defined.Contains(input))
                    throw new InvalidDataException($"{where}: input '{input}' is not a graph input, an initializer or the output of an earlier node");
            var op = OpSet.Compile(n, Opset, where);
            if (n.Input.All(input => input.Length == 0 || _constants.ContainsKey(input)))
            {
                // Constant folding: a node of constants only (Constant itself, the shape arithmetic of exported pads) is
                // evaluated once here.
                Value[] v;
                try { v = op(n.Input.Select(input => input.Length == 0 ? null : _constants[input]).ToArray()); }
                catch (InvalidDataException e) when (!e.Message.StartsWith(where, StringComparison.Ordinal)) { throw new InvalidDataException($"{where}: {e.Message}", e); }
                for (int o = 0; o < n.Output.Count && o < v.Length; o++)
                    if (n.Output[o].Length > 0) { _constants[n.Output[o]] = v[o]; defined.Add(n.Output[o]); }
                continue;
            }
            if (fusedRelu.Contains(n))
            {
                var inner = op;
                where += " + Relu";
                op = inputs =>
                {
                    var r = inner(inputs);
                    var y = r[0].F ?? throw new InvalidDataException("Relu needs a float tensor");
                    ResNetSharp.Kernels.Elementwise.Relu<float>(y, y);
                    return r;
                };
            }
            var step = new Step(n, where, n.Input.ToArray(), n.Output.ToArray(), op);
            foreach (var input in step.Inputs) if (input.Length > 0) _lastUse[input] = _steps.Count;
            _steps.Add(step);
            foreach (var o in n.Output) if (o.Length > 0) defined.Add(o);
        }
        foreach (var o in Outputs)
            if (!defined.Contains(o)) throw new InvalidDataException($"{Source}: graph output '{o}' is not computed by any node");
    }
}
