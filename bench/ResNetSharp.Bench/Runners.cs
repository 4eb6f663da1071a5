using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Training;

namespace ResNetSharp.Bench;

/// <summary>One engine doing one workload: a step is one inference or one training step on a fixed batch.</summary>
internal interface IRunner : IDisposable
{
    /// <summary>The engine, as the report names it.</summary>
    string Engine { get; }

    /// <summary>
    /// Runs up to <paramref name="k"/> steps and returns each one's wall time in ms; stops early after the step that
    /// takes the total past <paramref name="maxSeconds"/> (at least one step always runs).
    /// </summary>
    double[] Run(int k, double maxSeconds);
}

internal static class Inputs
{
    /// <summary>Seeded standard-normal values (Box–Muller), the same for every engine that gets this seed.</summary>
    public static float[] Normal(int count, int seed)
    {
        var rng = new Random(seed);
        var v = new float[count];
        for (int i = 0; i < count; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)), a = 2 * Math.PI * u2;
            v[i] = (float)(r * Math.Cos(a));
            if (i + 1 < count) v[i + 1] = (float)(r * Math.Sin(a));
        }
        return v;
    }

    public static int[] Labels(int count, int classes, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(classes)).ToArray();
    }

    public static double[] Timed(int k, double maxSeconds, Action step)
    {
        var times = new List<double>(k);
        var total = Stopwatch.StartNew();
        for (int i = 0; i < k; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            step();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            if (total.Elapsed.TotalSeconds >= maxSeconds) break;
        }
        return [.. times];
    }
}

/// <summary>ResNetSharp inference: the torchvision state dict loaded from .safetensors, eval mode.</summary>
internal sealed class OursInference : IRunner
{
    private readonly ResNet<float> _model;
    private readonly Tensor<float> _x;

    public OursInference(string arch, string safetensorsPath, int batch, float[] input)
    {
        _model = Load(arch, safetensorsPath);
        _x = Tensor<float>.FromArray(input, batch, 3, 224, 224);
    }

    public static ResNet<float> Load(string arch, string safetensorsPath)
    {
        var model = ResNets.Create(arch, new ResNetOptions { NumClasses = 1000 });
        StateDict.Load(model, safetensorsPath);  // streamed into the parameters, as a deployment would load it
        model.Eval();
        return model;
    }

    public string Engine => "ResNetSharp";

    public float[] Output() => _model.Forward(_x).Span.ToArray();

    public double[] Run(int k, double maxSeconds) => Inputs.Timed(k, maxSeconds, () => _model.Forward(_x));

    public void Dispose() { }
}

/// <summary>ONNX Runtime inference of the exported .onnx, with pre-allocated input and output buffers.</summary>
internal sealed class OrtInference : IRunner
{
    private readonly InferenceSession _session;
    private readonly SessionOptions _options;
    private readonly RunOptions _run = new();
    private readonly OrtValue _input, _output;
    private readonly float[] _outputData;
    private static readonly string[] InputNames = ["input"], OutputNames = ["logits"];

    public OrtInference(string onnxPath, int batch, float[] input, int threads, string? profilePrefix = null)
    {
        _options = CreateOptions(threads);
        if (profilePrefix is not null)
        {
            // ORT's own per-node timing (a JSON trace written by EndProfiling), for the layer profile. The prefix
            // first: enabling profiling passes the prefix set at that moment to ORT (else the trace lands in the
            // current folder).
            _options.ProfileOutputPathPrefix = profilePrefix;
            _options.EnableProfiling = true;
        }
        _session = new InferenceSession(onnxPath, _options);
        _input = OrtValue.CreateTensorValueFromMemory(input, [batch, 3, 224, 224]);
        _outputData = new float[batch * 1000];
        _output = OrtValue.CreateTensorValueFromMemory(_outputData, [batch, 1000]);
    }

    /// <summary>The settings every ORT measurement uses: T intra-op threads, 1 inter-op, all graph optimisations, sequential.</summary>
    public static SessionOptions CreateOptions(int threads) => new()
    {
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };

    public static string Version => OrtEnv.Instance().GetVersionString();

    public string Engine => "ONNX Runtime " + Version;

    public void Step() => _session.Run(_run, InputNames, [_input], OutputNames, [_output]);

    public float[] Output()
    {
        Step();
        return (float[])_outputData.Clone();
    }

    public double[] Run(int k, double maxSeconds) => Inputs.Timed(k, maxSeconds, Step);

    /// <summary>Stops ORT's profiling and returns the path of its trace (only with a profile prefix).</summary>
    public string EndProfiling() => _session.EndProfiling();

    public void Dispose()
    {
        _input.Dispose();
        _output.Dispose();
        _run.Dispose();
        _session.Dispose();
        _options.Dispose();
    }
}

/// <summary>One ResNetSharp training step: forward (BN in training mode), cross-entropy, backward, SGD.</summary>
internal sealed class OursTraining : IRunner
{
    private readonly ResNet<float> _model;
    private readonly Tensor<float> _x;
    private readonly int[] _labels;
    private readonly SoftmaxCrossEntropy<float> _loss = new();
    private readonly Sgd<float> _sgd;

    public OursTraining(string arch, int inChannels, int size, int batch)
    {
        _model = ResNets.Create(arch, new ResNetOptions { NumClasses = 10, InChannels = inChannels, Seed = 1 });
        _model.Train();
        _x = Tensor<float>.FromArray(Inputs.Normal(batch * inChannels * size * size, 2), batch, inChannels, size, size);
        _labels = Inputs.Labels(batch, 10, 3);
        _sgd = new Sgd<float>(_model.NamedParameters().Select(p => p.Parameter), learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4);
    }

    public string Engine => "ResNetSharp";

    public void Step()
    {
        _loss.Forward(_model.Forward(_x), _labels);
        _model.ZeroGrad();
        _model.Backward(_loss.Backward());
        _sgd.Step();
    }

    public double[] Run(int k, double maxSeconds) => Inputs.Timed(k, maxSeconds, Step);

    public void Dispose() { }
}

/// <summary>
/// PyTorch in a worker process (bench/peers/torch_train.py --serve): built once, then "run K" requests, so its rounds
/// interleave with ours without paying for the interpreter start or the warm-up each time.
/// </summary>
internal sealed class TorchWorker : IRunner
{
    private readonly Process _process;

    public TorchWorker(string python, string script, string work, int batch, int threads)
    {
        var psi = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,  // the worker's warnings go straight to our stderr
            UseShellExecute = false,
        };
        foreach (var a in new[] { script, "--serve", "--work", work, "--batch", batch.ToString(), "--threads", threads.ToString() })
            psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = threads.ToString();
        _process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {python}");
        using var hello = ReadJson();
        var root = hello.RootElement;
        if (!root.TryGetProperty("ready", out _)) throw new InvalidOperationException($"torch worker: unexpected first line {root}");
        TorchVersion = root.GetProperty("torch").GetString() ?? "?";
        TorchvisionVersion = root.GetProperty("torchvision").GetString() ?? "?";
        Params = root.GetProperty("params").GetInt64();
    }

    public string TorchVersion { get; }
    public string TorchvisionVersion { get; }
    public long Params { get; }
    public string Engine => "PyTorch " + TorchVersion;

    private JsonDocument ReadJson()
    {
        string? line = _process.StandardOutput.ReadLine();
        if (line is null)
        {
            _process.WaitForExit(5000);
            throw new InvalidOperationException($"torch worker ended (exit code {(_process.HasExited ? _process.ExitCode : -1)}) without an answer");
        }
        return JsonDocument.Parse(line);
    }

    public double[] Run(int k, double maxSeconds)
    {
        var times = new List<double>(k);
        var total = Stopwatch.StartNew();
        // One request per step, so the time cap applies as it does to our engine (the overhead is outside the timing).
        for (int i = 0; i < k; i++)
        {
            _process.StandardInput.WriteLine("run 1");
            _process.StandardInput.Flush();
            using var doc = ReadJson();
            if (doc.RootElement.TryGetProperty("error", out var err)) throw new InvalidOperationException($"torch worker: {err}");
            foreach (var t in doc.RootElement.GetProperty("times_ms").EnumerateArray()) times.Add(t.GetDouble());
            if (total.Elapsed.TotalSeconds >= maxSeconds) break;
        }
        return [.. times];
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.WriteLine("quit");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(10_000)) _process.Kill();
            }
        }
        catch (IOException) { }
        _process.Dispose();
    }
}
