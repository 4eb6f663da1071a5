using System.Diagnostics;
using System.Text.Json;

namespace ResNetSharp.Bench;

/// <summary>What a row measures and how it is judged.</summary>
/// <param name="Id">The name --only takes.</param>
/// <param name="Work">The workload, in words.</param>
/// <param name="Kind">Latency (median ms per step), Throughput (images/s from the median step), or PeakRss (MB).</param>
/// <param name="Target">The ratio ours/peer to reach: at most this for latency and memory, at least this for throughput.</param>
/// <param name="Batch">Images per step.</param>
/// <param name="Iters">Default iterations per engine per round.</param>
/// <param name="Warmup">Default untimed iterations per engine before the rounds.</param>
internal sealed record RowSpec(string Id, string Work, RowKind Kind, double Target, int Batch, int Iters, int Warmup)
{
    public bool LowerIsBetter => Kind != RowKind.Throughput;
    public string Unit => Kind switch { RowKind.Latency => "ms", RowKind.Throughput => "img/s", _ => "MB" };
    public string TargetText => (LowerIsBetter ? "≤ " : "≥ ") + Target.ToString("0.0#", System.Globalization.CultureInfo.InvariantCulture) + "×";
    public bool Meets(double ratio) => double.IsFinite(ratio) && (LowerIsBetter ? ratio <= Target : ratio >= Target);
}

internal enum RowKind { Latency, Throughput, PeakRss }

/// <summary>One engine's figures in one row.</summary>
/// <param name="Samples">Every timed step (ms) or every probe's peak RSS (MB), in order.</param>
/// <param name="RoundMedians">The median of each round, to show the spread between rounds.</param>
/// <param name="Value">The row's figure: median ms, images/s from the median ms, or median MB.</param>
internal sealed record EngineResult(string Engine, double[] Samples, double[] RoundMedians, double Median, double Value);

internal sealed record RowResult(RowSpec Spec, string PeerEngine, EngineResult? Ours, EngineResult? Peer, EngineResult? Info, double Ratio, bool Met, string? Error, double Seconds)
{
    /// <summary>The share of the machine's CPU that other processes used while this row ran (0..1; NaN if unknown).</summary>
    public double OthersCpu { get; init; } = double.NaN;
}

internal sealed record Agreement(string Model, int Batch, double MaxAbsDiff, double OutputScale, double Relative, double Limit)
{
    public bool Ok => Relative <= Limit;
}

internal static class Rows
{
    public static readonly RowSpec[] All =
    [
        new("r50-b1", "resnet50 inference, 3x224x224, batch 1 (latency)", RowKind.Latency, 0.8, 1, 10, 2),
        new("r50-b16", "resnet50 inference, 3x224x224, batch 16 (throughput)", RowKind.Throughput, 1.25, 16, 3, 1),
        new("r18-b1", "resnet18 inference, 3x224x224, batch 1 (latency)", RowKind.Latency, 0.7, 1, 10, 2),
        new("r20-train", "resnet20 training step (option A, 1x28x28, 10 classes), batch 128", RowKind.Throughput, 1.5, 128, 5, 2),
        new("r18-train", "resnet18 training step (3x224x224, 10 classes), batch 16", RowKind.Throughput, 1.3, 16, 3, 1),
        new("rss", "resnet50 inference, batch 1: peak RSS (VmHWM) of a fresh process that loads the model and runs it", RowKind.PeakRss, 1.0, 1, 0, 0),
    ];

    public static readonly string[] Ids = [.. All.Select(r => r.Id)];

    public const double AgreementLimit = 1e-3;

    public static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    public static string ModelPath(Options o, string arch, string ext)
    {
        string p = Path.Combine(o.ModelsDir, arch + ext);
        if (!File.Exists(p)) throw new FileNotFoundException($"{p} is missing: run /usr/bin/python3 bench/peers/export_models.py {o.ModelsDir}");
        return p;
    }

    /// <summary>Ours and ONNX Runtime on the same seeded batch of 2: max |difference| relative to max |ORT output|.</summary>
    public static Agreement CheckAgreement(Options o, string arch)
    {
        const int batch = 2;
        var input = Inputs.Normal(batch * 3 * 224 * 224, 100);
        float[] ours, ort;
        using (var r = new OursInference(arch, ModelPath(o, arch, ".safetensors"), batch, input)) ours = r.Output();
        using (var r = new OrtInference(ModelPath(o, arch, ".onnx"), batch, input, o.Threads)) ort = r.Output();
        double maxDiff = 0, scale = 0;
        for (int i = 0; i < ort.Length; i++)
        {
            double d = Math.Abs((double)ours[i] - ort[i]);
            if (!(d <= maxDiff)) maxDiff = d;  // NaN counts as the largest difference
            scale = Math.Max(scale, Math.Abs(ort[i]));
        }
        return new Agreement(arch, batch, maxDiff, scale, scale > 0 ? maxDiff / scale : double.PositiveInfinity, AgreementLimit);
    }

    public static RowResult Run(RowSpec spec, Options o, Log log)
    {
        var sw = Stopwatch.StartNew();
        string peerName = spec.Id switch { "r20-train" or "r18-train" => "PyTorch", _ => "ONNX Runtime" };
        try
        {
            if (spec.Kind == RowKind.PeakRss) return RunRss(spec, o, log, sw);
            var (ours, peer, info) = CreateRunners(spec, o);
            try
            {
                return Measure(spec, o, log, ours, peer, info, sw);
            }
            finally
            {
                ours.Dispose();
                peer.Dispose();
                info?.Dispose();
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            log.Line($"[{spec.Id}] FAILED: {e.GetType().Name}: {e.Message}");
            return new RowResult(spec, peerName, null, null, null, double.NaN, false, $"{e.GetType().Name}: {e.Message}", sw.Elapsed.TotalSeconds);
        }
    }

    private static (IRunner Ours, IRunner Peer, IRunner? Info) CreateRunners(RowSpec spec, Options o)
    {
        string script = o.TorchScript ?? throw new InvalidOperationException("torch_train.py not found; pass --torch-script");
        switch (spec.Id)
        {
            case "r50-b1" or "r50-b16" or "r18-b1":
                {
                    string arch = spec.Id.StartsWith("r50", StringComparison.Ordinal) ? "resnet50" : "resnet18";
                    var input = Inputs.Normal(spec.Batch * 3 * 224 * 224, 7);
                    var ours = new OursInference(arch, ModelPath(o, arch, ".safetensors"), spec.Batch, input);
                    var peer = new OrtInference(ModelPath(o, arch, ".onnx"), spec.Batch, input, o.Threads);
                    IRunner? info = o.TorchInference ? new TorchWorker(o.Python, script, "infer-" + arch, spec.Batch, o.Threads) : null;
                    return (ours, peer, info);
                }
            case "r20-train":
                return (new OursTraining("resnet20", 1, 28, spec.Batch), new TorchWorker(o.Python, script, "train-resnet20", spec.Batch, o.Threads), null);
            case "r18-train":
                return (new OursTraining("resnet18", 3, 224, spec.Batch), new TorchWorker(o.Python, script, "train-resnet18", spec.Batch, o.Threads), null);
            default:
                throw new ArgumentException($"no runners for row {spec.Id}");
        }
    }

    private static RowResult Measure(RowSpec spec, Options o, Log log, IRunner ours, IRunner peer, IRunner? info, Stopwatch sw)
    {
        var runners = info is null ? new[] { ours, peer } : [ours, peer, info];
        int iters = o.Iters ?? spec.Iters, warmup = o.Warmup ?? spec.Warmup;
        var samples = runners.Select(_ => new List<double>()).ToArray();
        var roundMedians = runners.Select(_ => new List<double>()).ToArray();

        for (int e = 0; e < runners.Length && warmup > 0; e++)
        {
            Settle();
            var w = runners[e].Run(warmup, o.MaxRoundSeconds);
            log.Line($"[{spec.Id}] warm-up {runners[e].Engine}: {string.Join(", ", w.Select(t => t.ToString("F1")))} ms");
        }
        for (int r = 0; r < o.Rounds; r++)
        {
            var parts = new List<string>();
            for (int e = 0; e < runners.Length; e++)
            {
                Settle();
                var t = runners[e].Run(iters, o.MaxRoundSeconds);
                samples[e].AddRange(t);
                roundMedians[e].Add(Median(t));
                parts.Add($"{runners[e].Engine} {Median(t):F1} ms (n={t.Length})");
            }
            log.Line($"[{spec.Id}] round {r + 1}/{o.Rounds}: {string.Join(", ", parts)}");
        }

        EngineResult Result(int e)
        {
            double med = Median(samples[e]);
            double value = spec.Kind == RowKind.Latency ? med : spec.Batch * 1000.0 / med;
            return new EngineResult(runners[e].Engine, [.. samples[e]], [.. roundMedians[e]], med, value);
        }
        var ou = Result(0);
        var pe = Result(1);
        var inf = info is null ? null : Result(2);
        double ratio = ou.Value / pe.Value;
        return new RowResult(spec, pe.Engine, ou, pe, inf, ratio, spec.Meets(ratio), null, sw.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// A short pause before each engine's turn, so that the other engine's worker threads (ORT and OpenMP spin a
    /// while after each run) are asleep before the clock starts.
    /// </summary>
    private static void Settle() => Thread.Sleep(100);

    private static RowResult RunRss(RowSpec spec, Options o, Log log, Stopwatch sw)
    {
        ModelPath(o, "resnet50", ".safetensors");
        ModelPath(o, "resnet50", ".onnx");
        var ours = new List<double>();
        var ort = new List<double>();
        int probes = o.Rounds;
        for (int r = 0; r < probes; r++)
        {
            ours.Add(Probe("ours", o));
            ort.Add(Probe("ort", o));
            log.Line($"[{spec.Id}] round {r + 1}/{probes}: ResNetSharp {ours[^1]:F0} MB, ONNX Runtime {ort[^1]:F0} MB (VmHWM)");
        }
        var ou = new EngineResult("ResNetSharp", [.. ours], [.. ours], Median(ours), Median(ours));
        var pe = new EngineResult("ONNX Runtime " + OrtInference.Version, [.. ort], [.. ort], Median(ort), Median(ort));
        double ratio = ou.Value / pe.Value;
        return new RowResult(spec, pe.Engine, ou, pe, null, ratio, spec.Meets(ratio), null, sw.Elapsed.TotalSeconds);
    }

    /// <summary>Runs this program again in --rss-probe mode and returns the child's VmHWM in MB (2^20 bytes).</summary>
    private static double Probe(string engine, Options o)
    {
        var psi = SelfStartInfo();
        foreach (var a in new[] { "--rss-probe", engine, "--rss-model", "resnet50", "--models", o.ModelsDir,
                     "--threads", o.Threads.ToString(), "--rss-iters", o.RssIters.ToString() })
            psi.ArgumentList.Add(a);
        psi.RedirectStandardOutput = true;
        psi.UseShellExecute = false;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the probe process");
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"the {engine} probe exited with code {p.ExitCode}: {output.Trim()}");
        string? line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        using var doc = JsonDocument.Parse(line ?? throw new InvalidOperationException($"the {engine} probe printed nothing"));
        return doc.RootElement.GetProperty("vmhwm_kb").GetInt64() / 1024.0;
    }

    private static ProcessStartInfo SelfStartInfo()
    {
        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("unknown process path");
        var psi = new ProcessStartInfo(exe);
        // Started as `dotnet ResNetSharp.Bench.dll`: the child needs the dll too.
        if (Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            psi.ArgumentList.Add(typeof(Rows).Assembly.Location);
        return psi;
    }

    /// <summary>The child side of the memory row: load resnet50, run N batch-1 inferences, print VmHWM and VmRSS.</summary>
    public static int RssProbeMain(Options o)
    {
        var input = Inputs.Normal(3 * 224 * 224, 7);
        ResNetSharp.Engine.Threads = o.Threads;
        IRunner runner = o.RssProbe == "ours"
            ? new OursInference(o.RssModel, ModelPath(o, o.RssModel, ".safetensors"), 1, input)
            : new OrtInference(ModelPath(o, o.RssModel, ".onnx"), 1, input, o.Threads);
        using (runner) runner.Run(o.RssIters, double.PositiveInfinity);
        var status = SystemInfo.ProcStatus();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            engine = o.RssProbe,
            model = o.RssModel,
            iters = o.RssIters,
            vmhwm_kb = status.GetValueOrDefault("VmHWM"),
            vmrss_kb = status.GetValueOrDefault("VmRSS"),
        }));
        return 0;
    }
}

/// <summary>Progress lines on stderr, with the time since the start.</summary>
internal sealed class Log
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    public void Line(string text) => Console.Error.WriteLine($"[{_clock.Elapsed:mm\\:ss}] {text}");
    public TimeSpan Elapsed => _clock.Elapsed;
}
