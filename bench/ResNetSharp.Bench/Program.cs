using System.Runtime.InteropServices;
using ResNetSharp.Bench;

// The benchmark harness. See Options.Usage, bench/run.sh and docs/performance.md.
Options o;
try
{
    o = Options.Parse(args);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"ResNetSharp.Bench: error: {e.Message}");
    return 2;
}
if (o.Help)
{
    Console.WriteLine(Options.Usage);
    return 0;
}
if (o.RssProbe is not null) return Rows.RssProbeMain(o);
if (o.Layers is not null) return LayerProfiles.Run(o);
if (o.Ab is not null)
{
    try { return SwitchAb.Run(o); }
    catch (UsageException e)
    {
        Console.Error.WriteLine($"ResNetSharp.Bench: error: {e.Message}");
        return 2;
    }
}

ResNetSharp.Engine.Threads = o.Threads;
var log = new Log();
var started = DateTime.UtcNow;
string root = SystemInfo.RepoRoot() ?? Directory.GetCurrentDirectory();
if (o.TorchScript is null)
{
    string script = Path.Combine(root, "bench", "peers", "torch_train.py");
    if (File.Exists(script)) o.TorchScript = script;
}
var selected = Rows.All.Where(r => o.Only.Count == 0 || o.Only.Contains(r.Id)).ToList();

string torchVersions = SystemInfo.Capture(o.Python, "-c", "import torch, torchvision; print(torch.__version__, torchvision.__version__)") ?? "? ?";
var tv = torchVersions.Split(' ');
var (commit, treeState) = o.SourceCommit is null
    ? SystemInfo.Git(root)
    : (o.SourceCommit, "a clean checkout made with git archive, not the working tree");
var report = new Report
{
    Command = o.Command ?? "ResNetSharp.Bench " + string.Join(' ', args),
    HarnessArgs = string.Join(' ', WithoutCommand(args).Select(a => a.Contains(' ') ? $"\"{a}\"" : a)),
    StartedUtc = started,
    Seconds = 0,
    Machine = SystemInfo.Machine(),
    Isa = SystemInfo.Isa(),
    Versions = new()
    {
        [".NET"] = RuntimeInformation.FrameworkDescription.Replace(".NET ", ""),
        ["ONNX Runtime"] = OrtInference.Version + " (NuGet Microsoft.ML.OnnxRuntime)",
        ["PyTorch"] = $"{tv[0]} (Debian python3-torch {SystemInfo.DebianPackageVersion("python3-torch")})",
        ["torchvision"] = $"{(tv.Length > 1 ? tv[1] : "?")} (Debian python3-torchvision {SystemInfo.DebianPackageVersion("python3-torchvision")})",
    },
    Commit = commit,
    TreeState = treeState,
    Threads = o.Threads,
    Rounds = o.Rounds,
    MaxRoundSeconds = o.MaxRoundSeconds,
    Note = o.Note,
};
log.Line($"commit {commit[..Math.Min(12, commit.Length)]} ({treeState}); {report.Machine}");
log.Line($"rows: {string.Join(", ", selected.Select(r => r.Id))}; rounds {o.Rounds}, threads {o.Threads}, max {o.MaxRoundSeconds} s per engine round");

if (o.WaitQuietSeconds > 0) WaitQuiet(o.WaitQuietSeconds, log);
var runStart = SystemInfo.CpuSnapshot.Take();

// Same weights, same answers: ours against ONNX Runtime on one input, before any timing.
var agreementModels = new List<string>();
if (selected.Any(r => r.Id is "r50-b1" or "r50-b16" or "rss")) agreementModels.Add("resnet50");
if (selected.Any(r => r.Id is "r18-b1")) agreementModels.Add("resnet18");
foreach (var arch in agreementModels)
{
    try
    {
        var a = Rows.CheckAgreement(o, arch);
        report.Agreements.Add(a);
        log.Line($"agreement {arch}: max |ours - ORT| {a.MaxAbsDiff:G3}, output scale {a.OutputScale:G4}, relative {a.Relative:G3} " +
                 $"(limit {a.Limit:G3}): {(a.Ok ? "agree" : "DISAGREE")}");
    }
    catch (Exception e) when (e is not OutOfMemoryException)
    {
        report.AgreementErrors.Add($"{arch}: {e.GetType().Name}: {e.Message}");
        log.Line($"agreement {arch}: FAILED: {e.Message}");
    }
}

foreach (var spec in selected)
{
    log.Line($"[{spec.Id}] {spec.Work}");
    if (o.WaitQuietSeconds > 0 && spec.Kind != RowKind.PeakRss) WaitQuiet(Math.Min(o.WaitQuietSeconds, 30), log);
    var before = SystemInfo.CpuSnapshot.Take();
    var r = Rows.Run(spec, o, log);
    r = r with { OthersCpu = SystemInfo.CpuSnapshot.Take().OthersSince(before) };
    report.Rows.Add(r);
    if (r.Ours is not null && r.Peer is not null)
        log.Line($"[{spec.Id}] ours {Report.Num(r.Ours.Value, spec.Unit)} {spec.Unit}, {r.PeerEngine} {Report.Num(r.Peer.Value, spec.Unit)} {spec.Unit}: " +
                 $"ratio {Report.Ratio(r.Ratio)} (target {spec.TargetText}) {(r.Met ? "met" : "MISSED")} in {r.Seconds:F0} s; " +
                 $"other processes used {Report.Percent(r.OthersCpu)} of the CPUs meanwhile");
}
report.Seconds = log.Elapsed.TotalSeconds;
report.OthersCpu = SystemInfo.CpuSnapshot.Take().OthersSince(runStart);

if (o.Json) Console.WriteLine(report.Json());
else
{
    Console.WriteLine();
    Console.Write(report.Table());
    Console.WriteLine();
    Console.Write(report.AgreementText());
}
if (o.JsonPath is not null) WriteFile(o.JsonPath, report.Json());
if (o.MarkdownPath is not null)
{
    WriteFile(o.MarkdownPath, report.Markdown());
    log.Line($"wrote {o.MarkdownPath}");
}
log.Line($"done in {log.Elapsed:m\\:ss}");
bool failed = report.AgreementErrors.Count > 0 || report.Agreements.Any(a => !a.Ok) || report.Rows.Any(r => r.Error is not null);
return failed ? 1 : 0;

// Waits until other processes use under 10% of the CPUs over 2 s, or maxSeconds pass.
static void WaitQuiet(double maxSeconds, Log log)
{
    var waited = System.Diagnostics.Stopwatch.StartNew();
    while (true)
    {
        var s0 = SystemInfo.CpuSnapshot.Take();
        Thread.Sleep(2000);
        double others = SystemInfo.CpuSnapshot.Take().OthersSince(s0);
        if (!(others >= 0.10))
        {
            if (waited.Elapsed.TotalSeconds > 3) log.Line($"machine quiet: other processes used {Report.Percent(others)} of the CPUs over 2 s");
            return;
        }
        if (waited.Elapsed.TotalSeconds >= maxSeconds)
        {
            log.Line($"machine still busy after {waited.Elapsed.TotalSeconds:F0} s (other processes: {Report.Percent(others)}); measuring anyway");
            return;
        }
        log.Line($"waiting for a quiet machine: other processes use {Report.Percent(others)} of the CPUs");
    }
}

// The arguments without "--command TEXT", which the report quotes on its own.
static IEnumerable<string> WithoutCommand(string[] args)
{
    for (int i = 0; i < args.Length; i++)
    {
        if (args[i] == "--command") { i++; continue; }
        yield return args[i];
    }
}

static void WriteFile(string path, string text)
{
    string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
    if (dir is not null) Directory.CreateDirectory(dir);
    File.WriteAllText(path, text);
}
