using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Training;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet bench`: median time per batch of inference (evaluation mode, fused path) or of a training step
/// (forward, cross-entropy, backward, SGD with momentum), after warm-up. Our engine alone: the comparison with
/// ONNX Runtime and PyTorch lives in bench/.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var options = new ModelOptions();
        var batch = CommonOptions.Batch();
        var train = new Option<bool>("--train") { Description = "Time a training step instead of inference" };
        var threads = new Option<int>("--threads") { Description = "Worker threads (default: the core count)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var profile = new Option<bool>("--profile") { Description = "Time and GFLOP/s per layer" };
        var iterations = new Option<int>("--iterations", "-n") { Description = "Timed iterations (the median is reported)", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed iterations first", DefaultValueFactory = _ => 3 };
        var cmd = options.AddTo(new Command("bench", "Time inference or a training step of an architecture: median ms per batch and images per second"),
            batch, train, threads, profile, iterations, warmup);
        cmd.SetAction(pr =>
        {
            var r0 = options.Read(pr);
            var (a, c, h, w) = (r0.Arch, r0.C, r0.H, r0.W);
            int n = CommonOptions.CheckBatch(pr.GetValue(batch)), t = pr.GetValue(threads), iters = pr.GetValue(iterations), warm = pr.GetValue(warmup);
            if (t is <= 0 or > 1024) throw new CliException($"--threads must be between 1 and 1024, got {t}");
            if (iters is <= 0 or > 100000) throw new CliException($"--iterations must be between 1 and 100000, got {iters}");
            if (warm is < 0 or > 100000) throw new CliException($"--warmup must be between 0 and 100000, got {warm}");
            Engine.Threads = t;
            var model = options.Build(r0);
            ForwardCommand.CheckMemory(model, a, c, h, w, n * (pr.GetValue(train) ? 3 : 1));
            var r = Run(model, n, c, h, w, pr.GetValue(train), iters, warm, pr.GetValue(profile));
            double imgPerS = n * 1000.0 / r.MedianMs;
            string mode = pr.GetValue(train) ? "train" : "infer";
            if (r0.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    arch = a, mode, batch = n, input = new[] { c, h, w }, threads = t, iterations = iters,
                    median_ms = r.MedianMs, min_ms = r.Times.Min(), img_per_s = imgPerS,
                    gflop_per_s = r.Macs > 0 ? 2.0 * r.Macs / r.MedianMs / 1e6 : (double?)null,
                    isa = Kernels.Packed.PackedGemm.Isa,
                    profile = r.Profile?.Select(p => new { layer = p.Layer, pass = p.Pass, ms = p.Ms, gflop_per_s = p.Macs > 0 ? 2.0 * p.Macs / p.Ms / 1e6 : (double?)null }),
                }));
                return ExitCodes.Ok;
            }
            Console.WriteLine($"{a} {mode}, batch {n}, input {c}x{h}x{w}, {t} thread(s), {Kernels.Packed.PackedGemm.Isa}: " +
                $"median {r.MedianMs:F2} ms per batch ({imgPerS:F1} img/s) over {iters} iterations after {warm} warm-up");
            if (r.Profile is not null)
            {
                Console.WriteLine($"{"layer",-72} {"pass",-8} {"ms",9} {"GFLOP/s",8}");
                foreach (var p in r.Profile)
                    Console.WriteLine($"{Trim(p.Layer, 72),-72} {p.Pass,-8} {p.Ms,9:F3} {(p.Macs > 0 ? (2.0 * p.Macs / p.Ms / 1e6).ToString("F1") : ""),8}");
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private static string Trim(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "…";

    public sealed record BenchResult(double MedianMs, double[] Times, long Macs, List<(string Layer, string Pass, double Ms, long Macs)>? Profile);

    public static BenchResult Run(ResNet<float> model, int n, int c, int h, int w, bool train, int iterations, int warmup, bool profile)
    {
        var rng = new Random(1);
        var x = new Tensor<float>(n, c, h, w);
        for (int i = 0; i < x.Length; i++) x.Span[i] = (float)Init.StandardNormal(rng);
        int classes = model.Fc.OutFeatures;
        var targets = Enumerable.Range(0, n).Select(i => i % classes).ToArray();
        var loss = new SoftmaxCrossEntropy<float>();
        var sgd = new Sgd<float>(model.NamedParameters().Select(p => p.Parameter), 0.01, momentum: 0.9, weightDecay: 1e-4);
        long macs = model.Summarize(c, h, w).Macs * n;
        if (train) model.Train(); else model.Eval();

        void Step()
        {
            if (!train) { model.Forward(x); return; }
            var logits = model.Forward(x);
            loss.Forward(logits, targets);
            model.ZeroGrad();
            model.Backward(loss.Backward());
            sgd.Step();
        }

        for (int i = 0; i < warmup; i++) Step();
        var times = new double[iterations];
        var layerProfile = profile && train ? new LayerProfile() : null;
        model.ProfileInference = profile && !train;
        var planProfile = new Dictionary<string, (double Ms, long Macs)>();
        var planOrder = new List<string>();
        LayerProfile.Current = layerProfile;
        try
        {
            for (int i = 0; i < iterations; i++)
            {
                long start = Stopwatch.GetTimestamp();
                Step();
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (model.LastInferenceProfile is { } steps)
                    foreach (var s in steps)
                    {
                        if (!planProfile.TryGetValue(s.Name, out var e)) planOrder.Add(s.Name);
                        planProfile[s.Name] = (e.Ms + s.Milliseconds, e.Macs + s.Macs);
                    }
            }
        }
        finally { LayerProfile.Current = null; model.ProfileInference = false; }

        List<(string, string, double, long)>? rows = null;
        if (layerProfile is not null)
            rows = layerProfile.Entries.Select(e => (e.Layer, e.Pass, e.Milliseconds / iterations, e.Macs / iterations)).ToList();
        else if (profile)
            rows = planOrder.Select(k => (k, "infer", planProfile[k].Ms / iterations, planProfile[k].Macs / iterations)).ToList();
        var sorted = times.OrderBy(t => t).ToArray();
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        return new BenchResult(median, times, macs * (train ? 3 : 1), rows);
    }
}
