using System.Diagnostics;
using System.Globalization;
using System.Net;
using ResNetSharp;
using ResNetSharp.Imaging;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Serve;
using SkiaSharp;

// Load test of `resnet serve`: the service in this process on a real Kestrel port (127.0.0.1, free port), N clients
// each posting one image to /v1/classify after another for a fixed time, once with dynamic batching and once
// without (max batch 1). Reports requests/s, latency percentiles and errors; exits 1 on any error.
//
//   dotnet run -c Release --project bench/ResNetSharp.LoadTest -- [--model M] [--clients 64] [--duration 20]
//       [--warmup 3] [--max-batch 32] [--max-wait-ms 5] [--threads N] [--arch resnet20]
//
// Without --model: a random-init model of --arch (the weights do not change the cost): a CIFAR-family network (default
// resnet20) gets Fashion-MNIST's 1x28x28 input and preprocessing, an ImageNet-family one 3 channels, 1000 classes and
// torchvision's ImageNet preprocessing (256x256 images, centre crop 224).

var opts = new Dictionary<string, string>(StringComparer.Ordinal);
for (int i = 0; i < args.Length; i++)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length) { Console.Error.WriteLine($"loadtest: bad argument '{args[i]}'"); return 2; }
    opts[args[i][2..]] = args[++i];
}
string? Opt(string name) => opts.GetValueOrDefault(name);
int Int(string name, int d) => Opt(name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : d;
double Dbl(string name, double d) => Opt(name) is { } s ? double.Parse(s, CultureInfo.InvariantCulture) : d;

int clients = Int("clients", 64), maxBatch = Int("max-batch", 32), threads = Int("threads", Environment.ProcessorCount);
double duration = Dbl("duration", 20), warmup = Dbl("warmup", 3), maxWaitMs = Dbl("max-wait-ms", 5);
Engine.Threads = threads;

string? modelPath = Opt("model");
string tempDir = Path.Combine(Path.GetTempPath(), "resnet-loadtest-" + Environment.ProcessId);
Directory.CreateDirectory(tempDir);
try
{
    if (modelPath is null)
    {
        string arch = Opt("arch") ?? "resnet20";
        modelPath = Path.Combine(tempDir, arch + "-random.safetensors");
        bool cifar = ResNets.IsCifar(arch);
        var m = ResNets.Create(arch, cifar ? new ResNetOptions { NumClasses = 10, InChannels = 1, Seed = 1 } : new ResNetOptions { Seed = 1 });
        ModelFile.Save(m, cifar ? ModelMetadata.For(m, [.. KnownLabels.FashionMnist], Preprocessing.FashionMnist) : ModelMetadata.For(m, [.. KnownLabels.ImageNet1k], Preprocessing.ImageNet), modelPath);
    }
    var (net, meta) = ModelFile.Load(modelPath);
    IImageModel model = new ResNetImageModel(net, meta);
    var inputs = ModelInputs.Resolve(model, modelPath);
    var pre = inputs.Preprocessing;

    // 32 different PNGs at the model's input size (decoding and preprocessing are part of the measured path).
    var images = Enumerable.Range(0, 32).Select(seed =>
    {
        var rng = new Random(seed);
        int w = pre.ResizeShorter ?? pre.Width, h = pre.ResizeShorter ?? pre.Height;
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var px = new byte[w * h * 4];
        rng.NextBytes(px);
        for (int i = 3; i < px.Length; i += 4) px[i] = 255;
        System.Runtime.InteropServices.Marshal.Copy(px, 0, bmp.GetPixels(), px.Length);
        return bmp.Encode(SKEncodedImageFormat.Png, 100).ToArray();
    }).ToArray();

    Console.WriteLine($"load test: {meta.Architecture} ({pre.Channels}x{pre.Height}x{pre.Width}) from {(opts.ContainsKey("model") ? modelPath : "a random-init model")}, " +
        $"{clients} clients, {duration:0.#} s per mode after {warmup:0.#} s warm-up, engine threads {threads}, {Environment.ProcessorCount} cores; " +
        $"load average before: {LoadAverage()}");
    Console.WriteLine();
    Console.WriteLine($"| mode | max batch | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | mean batch |");
    Console.WriteLine($"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    int totalErrors = 0;
    foreach (var (mode, batch) in new[] { ("batching", maxBatch), ("no batching", 1) })
    {
        var serve = new ServeOptions { Port = 0, MaxBatch = batch, MaxWait = TimeSpan.FromMilliseconds(batch == 1 ? 0 : maxWaitMs), QueueLength = Math.Max(256, clients * 2) };
        await using var server = await InferenceServer.StartAsync(model, inputs, serve, log: Console.Error.WriteLine);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients }) { Timeout = TimeSpan.FromSeconds(60) };
        var url = new Uri(server.Address, "/v1/classify?k=5");
        var warmEnd = Stopwatch.GetTimestamp() + (long)(warmup * Stopwatch.Frequency);
        var end = warmEnd + (long)(duration * Stopwatch.Frequency);
        var latencies = new List<double>[clients];
        var errors = new int[clients];
        var workers = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            latencies[c] = [];
            int k = c;
            while (true)
            {
                long t0 = Stopwatch.GetTimestamp();
                if (t0 >= end) break;
                bool ok;
                try
                {
                    using var r = await http.PostAsync(url, new ByteArrayContent(images[k++ % images.Length]));
                    await r.Content.ReadAsByteArrayAsync();
                    ok = r.StatusCode == HttpStatusCode.OK;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { ok = false; }
                if (t0 < warmEnd) continue;
                if (ok) latencies[c].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                else errors[c]++;
            }
        })).ToArray();
        // Batch statistics of the measured window only: snapshot when warm-up ends.
        await Task.Delay(TimeSpan.FromSeconds(warmup));
        var (_, batchSum0, batchCount0) = server.Metrics.BatchSize.Snapshot();
        await Task.WhenAll(workers);
        var (_, batchSum1, batchCount1) = server.Metrics.BatchSize.Snapshot();
        var all = latencies.SelectMany(l => l).Order().ToArray();
        int errs = errors.Sum();
        totalErrors += errs;
        double P(double q) => all.Length == 0 ? double.NaN : all[Math.Min(all.Length - 1, (int)Math.Ceiling(q * all.Length) - 1)];
        double meanBatch = (batchSum1 - batchSum0) / Math.Max(1, batchCount1 - batchCount0);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {mode} | {batch} | {all.Length} | {errs} | {all.Length / duration:F1} | {P(0.5):F1} | {P(0.9):F1} | {P(0.99):F1} | {(all.Length > 0 ? all[^1] : double.NaN):F1} | {meanBatch:F2} |"));
    }
    Console.WriteLine();
    Console.WriteLine($"errors: {totalErrors}; load average after: {LoadAverage()}");
    return totalErrors == 0 ? 0 : 1;
}
finally
{
    try { Directory.Delete(tempDir, recursive: true); } catch (IOException) { }
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
