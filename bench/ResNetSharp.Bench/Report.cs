using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNetSharp.Bench;

/// <summary>Everything one run produced, and how it is printed: a table, docs/performance.md, JSON.</summary>
internal sealed class Report
{
    public required string Command { get; init; }
    public required string HarnessArgs { get; init; }
    public required DateTime StartedUtc { get; init; }
    public required double Seconds { get; set; }
    public required string Machine { get; init; }
    public required string Isa { get; init; }
    public required Dictionary<string, string> Versions { get; init; }
    public required string Commit { get; init; }
    public required string TreeState { get; init; }
    public required int Threads { get; init; }
    public required int Rounds { get; init; }
    public required double MaxRoundSeconds { get; init; }
    public string? Note { get; init; }
    /// <summary>The share of the CPUs other processes used during the whole run.</summary>
    public double OthersCpu { get; set; } = double.NaN;
    public List<Agreement> Agreements { get; } = [];
    public List<string> AgreementErrors { get; } = [];
    public List<RowResult> Rows { get; } = [];

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Above this share of the CPUs taken by other processes, a row's figures are called disturbed.</summary>
    public const double DisturbedShare = 0.10;

    public static string Num(double v, string unit)
    {
        if (!double.IsFinite(v)) return "n/a";
        string fmt = unit == "MB" ? "F0" : Math.Abs(v) >= 100 ? "F0" : Math.Abs(v) >= 10 ? "F1" : "F2";
        return v.ToString(fmt, Inv);
    }

    public static string Percent(double f) => double.IsFinite(f) ? (f * 100).ToString("F0", Inv) + "%" : "n/a";

    public static string Ratio(double r) => double.IsFinite(r) ? r.ToString(r >= 0.1 ? "F2" : r >= 0.01 ? "F3" : "F4", Inv) + "×" : "n/a";

    private static string Spread(EngineResult e, string unit, RowSpec spec)
    {
        // Round medians expressed in the row's unit, min–max.
        var v = e.RoundMedians.Select(ms => spec.Kind == RowKind.Throughput ? spec.Batch * 1000.0 / ms : ms).ToArray();
        return v.Length <= 1 ? "–" : $"{Num(v.Min(), unit)}–{Num(v.Max(), unit)}";
    }

    private static string Result(RowResult r) => r.Error is not null ? "MISSED (error)" : r.Met ? "met" : "MISSED";

    /// <summary>The results table in Markdown (also what the console shows).</summary>
    public string Table()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| row | work | unit | ResNetSharp | peer | peer's figure | ours / peer | target | result | samples ours / peer | round medians ours; peer | PyTorch 1.13 (info) | CPU used by other processes |");
        sb.AppendLine("|---|---|---|---:|---|---:|---:|---|---|---|---|---:|---:|");
        foreach (var r in Rows)
        {
            var s = r.Spec;
            string unit = s.Unit;
            if (r.Error is not null || r.Ours is null || r.Peer is null)
            {
                sb.AppendLine($"| {s.Id} | {s.Work} | {unit} | n/a | {r.PeerEngine} | n/a | n/a | {s.TargetText} | {Result(r)}: {r.Error?.Replace("|", "/")} | | | | {Percent(r.OthersCpu)} |");
                continue;
            }
            string info = r.Info is null ? "" : $"{Num(r.Info.Value, unit)} ({Ratio(r.Ours.Value / r.Info.Value)} ours/PyTorch)";
            string spread = s.Kind == RowKind.PeakRss
                ? $"{string.Join(", ", r.Ours.Samples.Select(v => Num(v, unit)))}; {string.Join(", ", r.Peer.Samples.Select(v => Num(v, unit)))}"
                : $"{Spread(r.Ours, unit, s)}; {Spread(r.Peer, unit, s)}";
            sb.AppendLine($"| {s.Id} | {s.Work} | {unit} | {Num(r.Ours.Value, unit)} | {r.Peer.Engine} | {Num(r.Peer.Value, unit)} | " +
                          $"{Ratio(r.Ratio)} | {s.TargetText} | {Result(r)} | {r.Ours.Samples.Length} / {r.Peer.Samples.Length} | {spread} | {info} | {Percent(r.OthersCpu)} |");
        }
        return sb.ToString();
    }

    public string AgreementText()
    {
        var sb = new StringBuilder();
        foreach (var a in Agreements)
            sb.AppendLine($"- {a.Model}, batch {a.Batch}, same seeded input: max |ours − ORT| = {a.MaxAbsDiff.ToString("G3", Inv)}, " +
                          $"max |ORT logit| = {a.OutputScale.ToString("G4", Inv)}, relative {a.Relative.ToString("G3", Inv)} " +
                          $"(limit {a.Limit.ToString("G3", Inv)}): **{(a.Ok ? "agree" : "DISAGREE")}**");
        foreach (var e in AgreementErrors) sb.AppendLine($"- {e}: **check failed**");
        return sb.ToString();
    }

    public string Markdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Performance");
        sb.AppendLine();
        sb.AppendLine("ResNetSharp against ONNX Runtime (inference) and PyTorch 1.13 (training steps), measured together in one run.");
        sb.AppendLine("Every figure below was produced by this command, at this commit, on this machine; nothing was edited by hand.");
        sb.AppendLine("This file is written by the harness (`bench/ResNetSharp.Bench`, `--markdown`): rerun the command to refresh it.");
        sb.AppendLine();
        sb.AppendLine("    " + Command);
        sb.AppendLine();
        sb.AppendLine($"- Date: {StartedUtc.ToString("yyyy-MM-dd HH:mm", Inv)} UTC; the run took {TimeSpan.FromSeconds(Seconds):m\\:ss} (harness only, after the build).");
        sb.AppendLine($"- Commit: `{Commit}` ({TreeState}).");
        sb.AppendLine($"- Harness arguments: `{HarnessArgs}`");
        sb.AppendLine($"- Machine: {Machine}; {Isa}.");
        sb.AppendLine("- Versions: " + string.Join(", ", Versions.Select(kv => $"{kv.Key} {kv.Value}")) + ".");
        sb.AppendLine($"- Threads: {Threads} for every engine (ResNetSharp `Engine.Threads`; ONNX Runtime IntraOpNumThreads={Threads}, " +
                      $"InterOpNumThreads=1, ORT_ENABLE_ALL, sequential execution; PyTorch `torch.set_num_threads({Threads})`, 1 inter-op thread).");
        sb.AppendLine($"- Method: warm-up, then {Rounds} interleaved round{(Rounds == 1 ? "" : "s")} (ours, peer[, PyTorch], ours, peer, ...) of K steps per engine, " +
                      $"each round of an engine cut short after the step that passes {MaxRoundSeconds.ToString("0.#", Inv)} s (at least one step). " +
                      "Figures are medians over all timed steps; images/s = batch / median step time. " +
                      "Ratios are ours / peer in the row's unit: for ms and MB lower is better, for img/s higher is better.");
        if (Note is not null) sb.AppendLine($"- Note: {Note}");
        sb.AppendLine();
        sb.AppendLine("## Results");
        sb.AppendLine();
        var disturbed = Rows.Where(r => r.Spec.Kind != RowKind.PeakRss && r.OthersCpu > DisturbedShare).Select(r => $"{r.Spec.Id} ({Percent(r.OthersCpu)})").ToList();
        if (disturbed.Count > 0)
        {
            sb.AppendLine($"**Warning:** other processes took more than {Percent(DisturbedShare)} of the CPUs during {string.Join(", ", disturbed)}; " +
                          "those timings are disturbed (the interleaving spreads the disturbance over both engines, but not evenly). Rerun on a quiet machine. " +
                          "(Peak memory does not depend on it.)");
            sb.AppendLine();
        }
        sb.Append(Table());
        sb.AppendLine();
        sb.AppendLine("`samples` counts the timed steps (for `rss`, the probe processes); `round medians` shows the lowest and highest median of a round, " +
                      "in the row's unit. The PyTorch column of the inference rows is for information only (no target). " +
                      "The last column is the share of the machine's CPU time that processes other than the harness and its peers took while the row ran " +
                      $"(from /proc/stat; {Percent(OthersCpu)} over the whole run): above a few percent, the row's timings are disturbed.");
        sb.AppendLine();
        sb.AppendLine("## Same weights, same answers");
        sb.AppendLine();
        sb.AppendLine("Both engines load one seeded torchvision model exported by `bench/peers/export_models.py` " +
                      "(ours from the state dict in .safetensors, ONNX Runtime from the .onnx; BN running statistics from training-mode passes). " +
                      "Before timing, the harness runs both on the same input:");
        sb.AppendLine();
        sb.Append(AgreementText());
        sb.AppendLine();
        sb.AppendLine("## The rows");
        sb.AppendLine();
        sb.AppendLine("- Inference (`r50-b1`, `r50-b16`, `r18-b1`): torchvision resnet50/resnet18, 1000 classes, evaluation mode, seeded normal input; " +
                      "ours is `model.Forward(x)`, ONNX Runtime is `InferenceSession.Run` into pre-allocated input and output buffers; " +
                      "PyTorch is `model(x)` under `torch.no_grad()`.");
        sb.AppendLine("- Training (`r20-train`, `r18-train`): one step = forward with BatchNorm in training mode, mean cross-entropy, backward, " +
                      "SGD (lr 0.01, momentum 0.9, weight decay 1e-4) on one fixed random batch. resnet20 is the CIFAR network with option-A shortcuts " +
                      "and 1 input channel (269,434 parameters); resnet18 has 10 classes. PyTorch runs `bench/peers/torch_train.py` as a worker process.");
        sb.AppendLine("- Memory (`rss`): a fresh process per probe (`ResNetSharp.Bench --rss-probe ours|ort`) loads resnet50 " +
                      "(ours: .safetensors; ORT: .onnx), runs batch-1 inferences and reports VmHWM from /proc/self/status; both probes are the same .NET host, " +
                      "so the runtime's own footprint is in both.");
        sb.AppendLine();
        sb.AppendLine("## Rerun");
        sb.AppendLine();
        sb.AppendLine("`bench/run.sh` installs Debian's PyTorch if it is missing, exports the models into `bench/.models` if they are absent, " +
                      "builds the harness in Release and rewrites this file; `bench/results/latest.json` gets every sample. " +
                      "`BENCH_REV=<commit> bench/run.sh` measures a clean checkout of a commit instead of the working tree; " +
                      "`--only r50-b1,r50-b16,r18-b1,r20-train,r18-train,rss` picks rows; `--rounds`, `--iters`, `--max-round-s` set the sample counts; " +
                      "`bench/run.sh --help` lists the rest. The peers alone: " +
                      "`/usr/bin/python3 bench/peers/torch_train.py --work train-resnet20 --threads 2`.");
        return sb.ToString();
    }

    public string Json()
    {
        var doc = new
        {
            command = Command,
            harness_args = HarnessArgs,
            started_utc = StartedUtc.ToString("o", Inv),
            seconds = Seconds,
            machine = Machine,
            isa = Isa,
            versions = Versions,
            commit = Commit,
            tree_state = TreeState,
            threads = Threads,
            rounds = Rounds,
            max_round_s = MaxRoundSeconds,
            note = Note,
            other_processes_cpu = double.IsFinite(OthersCpu) ? OthersCpu : (double?)null,
            agreement = Agreements.Select(a => new { model = a.Model, batch = a.Batch, max_abs_diff = a.MaxAbsDiff, output_scale = a.OutputScale, relative = a.Relative, limit = a.Limit, ok = a.Ok }),
            agreement_errors = AgreementErrors,
            rows = Rows.Select(r => new
            {
                id = r.Spec.Id,
                work = r.Spec.Work,
                unit = r.Spec.Unit,
                lower_is_better = r.Spec.LowerIsBetter,
                batch = r.Spec.Batch,
                ours = Engine(r.Ours),
                peer = Engine(r.Peer),
                pytorch_info = Engine(r.Info),
                ratio = double.IsFinite(r.Ratio) ? r.Ratio : (double?)null,
                target = r.Spec.Target,
                result = Result(r),
                error = r.Error,
                seconds = r.Seconds,
                other_processes_cpu = double.IsFinite(r.OthersCpu) ? r.OthersCpu : (double?)null,
            }),
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never });
    }

    private static object? Engine(EngineResult? e) => e is null ? null : new
    {
        engine = e.Engine,
        value = e.Value,
        median = e.Median,
        samples = e.Samples.Select(v => Math.Round(v, 3)),
        round_medians = e.RoundMedians.Select(v => Math.Round(v, 3)),
    };
}
