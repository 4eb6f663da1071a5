using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Bench;

/// <summary>
/// --ab: one of the engine's switches (a static field or property that its kernels read on every call, such as
/// NchwConv.UseWinograd or PackedGemm.PrefetchWeights) measured against itself, on one model (or one kernel call,
/// <see cref="KernelWorkloads"/>) in one process. Each
/// round runs the workload with A, with B and with A again, in an order that rotates from round to round, so that
/// neither setting always runs first or after the other. It reports the medians over the rounds of B/A and, as the
/// noise floor of this machine at that moment, of A-again/A.
/// <para>
/// Why this way: the machine's speed swings by tens of percent between runs, and within one process two model
/// instances built alike ran up to 3% apart (the first one built the slowest), and the first of a fixed pair ran
/// about 2% slower than the second. Comparing separate runs, separate models or fixed orders reported those as
/// effects. A switch read only when an inference plan is built (InferencePlan's) cannot be measured here: its model
/// keeps the plan it made first.
/// </para>
/// </summary>
internal static class SwitchAb
{
    public static int Run(Options o)
    {
        var (describe, set, a, b) = Resolve(o.Ab!);
        ResNetSharp.Engine.Threads = o.Threads;
        int rounds = o.RoundsGiven ? o.Rounds : 30, warmup = o.Warmup ?? 3;
        var (work, step, profile) = Workload(o.AbWork);
        Console.Error.WriteLine($"--ab {describe}: A = {a}, B = {b}, on {work}; {warmup} warm-up runs of each, then {rounds} rounds of A, B, A again in rotating order, {o.Threads} threads");
        for (int i = 0; i < warmup; i++) { set(a); step(); set(b); step(); }
        var ta = new List<double>(); var tb = new List<double>();
        var ratio = new List<double>(); var floor = new List<double>();
        // Per layer (--ab-layers): each run's time per layer or plan step, by setting (0 = A, 1 = B, 2 = A again).
        var layers = new Dictionary<string, List<double>[]>();
        var layerOrder = new List<string>();
        // Orders of (0 = A, 1 = B, 2 = A again): every position taken by each in turn.
        int[][] orders = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [1, 0, 2], [2, 1, 0]];
        for (int r = 0; r < rounds; r++)
        {
            var t = new double[3];
            foreach (int which in orders[r % orders.Length])
            {
                set(which == 1 ? b : a);
                if (o.AbLayers) profile.Start();
                long t0 = Stopwatch.GetTimestamp();
                step();
                t[which] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                if (!o.AbLayers) continue;
                foreach (var (name, ms) in profile.Stop())
                {
                    if (!layers.TryGetValue(name, out var runs))
                    {
                        layers[name] = runs = [[], [], []];
                        layerOrder.Add(name);
                    }
                    runs[which].Add(ms);
                }
            }
            ta.Add(t[0]); tb.Add(t[1]);
            ratio.Add(t[1] / t[0]); floor.Add(t[2] / t[0]);
        }
        set(a);
        if (o.AbLayers)
        {
            Console.WriteLine($"{"layer or step",-72} {"A ms",8} {"B ms",8} {"B/A",6} {"A again/A",9}");
            foreach (var name in layerOrder)
            {
                var runs = layers[name];
                if (runs.Any(x => x.Count == 0)) continue;
                double ma = Median(runs[0]), mb = Median(runs[1]), ma2 = Median(runs[2]);
                Console.WriteLine($"{(name.Length > 72 ? name[..72] : name),-72} {ma,8:F3} {mb,8:F3} {mb / ma,6:F3} {ma2 / ma,9:F3}");
            }
        }
        Console.WriteLine($"{describe} on {work}, {rounds} rounds: A = {a} {Median(ta):F2} ms, B = {b} {Median(tb):F2} ms (medians); " +
            $"B/A {Median(ratio):F3} (IQR {Quantile(ratio, 0.25):F3}–{Quantile(ratio, 0.75):F3}); noise floor, A again/A, {Median(floor):F3} " +
            $"(IQR {Quantile(floor, 0.25):F3}–{Quantile(floor, 0.75):F3})");
        return 0;
    }

    /// <summary>"Type.Member=A,B": a static field or property of a type in the engine's assembly, by simple or full name.</summary>
    private static (string Describe, Action<object> Set, object A, object B) Resolve(string spec)
    {
        int eq = spec.IndexOf('='), dot = eq < 0 ? -1 : spec.LastIndexOf('.', eq);
        var values = eq < 0 ? [] : spec[(eq + 1)..].Split(',');
        if (eq < 0 || dot < 0 || values.Length != 2)
            throw new UsageException($"--ab takes Type.Member=A,B (e.g. NchwConv.UseWinograd=true,false), got '{spec}'");
        string typeName = spec[..dot], member = spec[(dot + 1)..eq];
        var types = typeof(ResNetSharp.Engine).Assembly.GetTypes().Where(t => t.FullName == typeName || t.Name == typeName).ToList();
        if (types.Count != 1)
            throw new UsageException(types.Count == 0 ? $"--ab: no type '{typeName}' in the engine" : $"--ab: '{typeName}' names {types.Count} types; give the full name");
        const BindingFlags Static = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        var field = types[0].GetField(member, Static);
        var property = field is null ? types[0].GetProperty(member, Static) : null;
        var type = field?.FieldType ?? property?.PropertyType
            ?? throw new UsageException($"--ab: {types[0].FullName} has no static field or property '{member}'");
        if (field is { IsInitOnly: true } or { IsLiteral: true } || property is { CanWrite: false })
            throw new UsageException($"--ab: {types[0].FullName}.{member} cannot be set");
        object Parse(string v)
        {
            try { return Convert.ChangeType(v.Trim(), type, CultureInfo.InvariantCulture); }
            catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException)
            { throw new UsageException($"--ab: '{v}' is not a {type.Name} for {types[0].Name}.{member}"); }
        }
        Action<object> set = field is not null ? v => field.SetValue(null, v) : v => property!.SetValue(null, v);
        return ($"{types[0].Name}.{member}", set, Parse(values[0]), Parse(values[1]));
    }

    /// <summary>Per-layer times of one run: the layer-by-layer profile in training, the plan's steps in inference.</summary>
    private sealed class RunProfile(ResNet<float>? inference)
    {
        private LayerProfile? _layers;

        public void Start()
        {
            if (inference is not null) inference.ProfileInference = true;
            else LayerProfile.Current = _layers = new LayerProfile();
        }

        public IEnumerable<(string Name, double Ms)> Stop()
        {
            if (inference is not null)
            {
                inference.ProfileInference = false;
                return inference.LastInferenceProfile?.Select(s => (s.Name, s.Milliseconds)).ToList() ?? [];
            }
            LayerProfile.Current = null;
            return _layers!.Entries.Select(e => ($"{e.Layer} {e.Pass}", e.Milliseconds)).ToList();
        }
    }

    /// <summary>The workload of a benchmark row, on a model with its own (random) weights.</summary>
    private static (string Describe, Action Step, RunProfile Profile) Workload(string row)
    {
        if (KernelWorkloads.IsKernel(row))
        {
            var (describe, step) = KernelWorkloads.Create(row);
            return (describe, step, new RunProfile(null));
        }
        switch (row)
        {
            case "r50-b1" or "r50-b16" or "r18-b1":
                {
                    string arch = row.StartsWith("r50", StringComparison.Ordinal) ? "resnet50" : "resnet18";
                    int batch = row.EndsWith("b16", StringComparison.Ordinal) ? 16 : 1;
                    var model = ResNets.Create(arch, new ResNetOptions { Seed = 1 });
                    model.Eval();
                    var x = Tensor<float>.FromArray(Inputs.Normal(batch * 3 * 224 * 224, 7), batch, 3, 224, 224);
                    return ($"{arch} inference, batch {batch}", () => model.Forward(x), new RunProfile(model));
                }
            case "r20-train":
                {
                    var t = new OursTraining("resnet20", 1, 28, 128);
                    return ("resnet20 training step, 1x28x28, batch 128", t.Step, new RunProfile(null));
                }
            case "r18-train":
                {
                    var t = new OursTraining("resnet18", 3, 224, 16);
                    return ("resnet18 training step, 3x224x224, batch 16", t.Step, new RunProfile(null));
                }
            default:
                throw new UsageException($"--ab-work takes r50-b1, r50-b16, r18-b1, r20-train or r18-train, got '{row}'");
        }
    }

    private static double Median(List<double> v) => Quantile(v, 0.5);

    private static double Quantile(List<double> v, double q)
    {
        var s = v.OrderBy(x => x).ToList();
        return s[(int)Math.Min(s.Count - 1, Math.Floor(q * s.Count))];
    }
}
