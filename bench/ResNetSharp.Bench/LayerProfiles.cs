using System.Globalization;
using System.Text.Json;

namespace ResNetSharp.Bench;

/// <summary>
/// --layers ROW: where the time goes, ours per plan step (the inference plan's own profile) beside ONNX Runtime per
/// graph node (its profiler's kernel times), on the row's model and batch, in interleaved rounds. Medians over the
/// timed runs; each engine's sum of step medians and its whole-pass median show what the profiling itself costs.
/// </summary>
internal static class LayerProfiles
{
    public static int Run(Options o)
    {
        var (arch, batch) = o.Layers switch
        {
            "r50-b1" => ("resnet50", 1),
            "r50-b16" => ("resnet50", 16),
            _ => ("resnet18", 1),
        };
        ResNetSharp.Engine.Threads = o.Threads;
        int rounds = o.Rounds, iters = o.Iters ?? (batch == 1 ? 50 : 5), warmup = o.Warmup ?? (batch == 1 ? 10 : 2);
        var log = new Log();
        log.Line($"layer profile of {arch} at batch {batch}: {rounds} rounds of {iters} runs per engine after {warmup} warm-up, {o.Threads} threads");
        var input = Inputs.Normal(batch * 3 * 224 * 224, 1);
        var model = OursInference.Load(arch, Rows.ModelPath(o, arch, ".safetensors"));
        var x = Tensors.Tensor<float>.FromArray(input, batch, 3, 224, 224);
        string prefix = Path.Combine(Path.GetTempPath(), $"resnetsharp-ort-profile-{Environment.ProcessId}");
        using var ort = new OrtInference(Rows.ModelPath(o, arch, ".onnx"), batch, input, o.Threads, prefix);

        model.ProfileInference = true;
        var ourSteps = new Dictionary<string, List<double>>();
        var ourOrder = new List<string>();
        var ourMacs = new Dictionary<string, long>();
        var ourPasses = new List<double>();
        var ortPasses = new List<double>();
        for (int i = 0; i < warmup; i++) { model.Forward(x); ort.Step(); }
        for (int r = 0; r < rounds; r++)
        {
            for (int i = 0; i < iters; i++)
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                model.Forward(x);
                ourPasses.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                foreach (var step in model.LastInferenceProfile!)
                {
                    if (!ourSteps.TryGetValue(step.Name, out var list)) { ourSteps[step.Name] = list = []; ourOrder.Add(step.Name); ourMacs[step.Name] = step.Macs; }
                    list.Add(step.Milliseconds);
                }
            }
            ortPasses.AddRange(ort.Run(iters, double.MaxValue));
            log.Line($"round {r + 1}: ours {Median(ourPasses):F2} ms, ONNX Runtime {Median(ortPasses):F2} ms (medians so far, profiling on)");
        }
        model.ProfileInference = false;
        string trace = ort.EndProfiling();
        var (ortOrder, ortNodes) = ReadOrtTrace(trace, warmup);
        try { File.Delete(trace); } catch (IOException) { }

        Console.WriteLine($"# {arch}, batch {batch}, {o.Threads} threads: medians over {ourPasses.Count} runs per engine ({rounds} interleaved rounds), profiling on");
        Console.WriteLine();
        Console.WriteLine($"ResNetSharp: whole pass {Median(ourPasses):F3} ms, sum of step medians {ourOrder.Sum(n => Median(ourSteps[n])):F3} ms");
        Console.WriteLine($"{"ms",9}  {"GFLOP/s",8}  step");
        foreach (var name in ourOrder)
        {
            double ms = Median(ourSteps[name]);
            string rate = ourMacs[name] > 0 ? (2.0 * ourMacs[name] / ms / 1e6).ToString("F1", CultureInfo.InvariantCulture) : "";
            Console.WriteLine($"{ms,9:F3}  {rate,8}  {name}");
        }
        Console.WriteLine();
        Console.WriteLine($"{ort.Engine}: whole pass {Median(ortPasses):F3} ms, sum of node medians {ortOrder.Sum(n => Median(ortNodes[n].Times)):F3} ms");
        Console.WriteLine($"{"ms",9}  node (op, output shape)");
        foreach (var name in ortOrder)
            Console.WriteLine($"{Median(ortNodes[name].Times),9:F3}  {name} ({ortNodes[name].Op}, {ortNodes[name].Shape})");
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    // The "Node" events of an ORT trace ("<node>_kernel_time", duration in µs), per node in graph order, skipping each
    // node's first `skip` runs (the warm-up).
    private static (List<string> Order, Dictionary<string, (string Op, string Shape, List<double> Times)> Nodes) ReadOrtTrace(string path, int skip)
    {
        var order = new List<string>();
        var nodes = new Dictionary<string, (string Op, string Shape, List<double> Times)>();
        var seen = new Dictionary<string, int>();
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (!e.TryGetProperty("cat", out var cat) || cat.GetString() != "Node") continue;
            string name = e.GetProperty("name").GetString() ?? "";
            if (!name.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
            name = name[..^"_kernel_time".Length];
            seen[name] = seen.GetValueOrDefault(name) + 1;
            if (seen[name] <= skip) continue;
            if (!nodes.TryGetValue(name, out var node))
            {
                var args = e.GetProperty("args");
                string op = args.TryGetProperty("op_name", out var opName) ? opName.GetString() ?? "" : "";
                string shape = args.TryGetProperty("output_type_shape", out var s) ? CompactShape(s) : "";
                nodes[name] = node = (op, shape, []);
                order.Add(name);
            }
            node.Times.Add(e.GetProperty("dur").GetDouble() / 1000.0);
        }
        return (order, nodes);
    }

    // [{"float":[1,64,56,56]}] → 1x64x56x56
    private static string CompactShape(JsonElement shapes)
    {
        var parts = new List<string>();
        if (shapes.ValueKind != JsonValueKind.Array) return shapes.ToString();
        foreach (var output in shapes.EnumerateArray())
            foreach (var typed in output.EnumerateObject())
                if (typed.Value.ValueKind == JsonValueKind.Array)
                    parts.Add(string.Join("x", typed.Value.EnumerateArray().Select(d => d.ToString())));
        return string.Join(", ", parts);
    }
}
