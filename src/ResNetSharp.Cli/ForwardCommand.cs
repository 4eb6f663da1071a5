using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Cli;

/// <summary>`resnet forward`: one evaluation-mode forward pass on a seeded random batch, timed.</summary>
internal static class ForwardCommand
{
    public static Command Create()
    {
        var options = new ModelOptions();
        var batch = CommonOptions.Batch();
        var seed = new Option<int>("--seed") { Description = "Seed of the weights and the input", DefaultValueFactory = _ => 0 };
        var cmd = options.AddTo(new Command("forward", "Run one forward pass of an architecture on a seeded random input and time it"), batch, seed);
        cmd.SetAction(pr =>
        {
            var r = options.Read(pr);
            var (a, c, h, w) = (r.Arch, r.C, r.H, r.W);
            int n = CommonOptions.CheckBatch(pr.GetValue(batch));
            var result = Run(a, c, h, w, n, r.Classes, r.SmallStem, pr.GetValue(seed));
            if (r.Json)
                Console.WriteLine(JsonSerializer.Serialize(new { arch = a, input = new[] { n, c, h, w }, output = result.OutputShape, ms = result.Milliseconds, top5 = result.Top5 }));
            else
            {
                Console.WriteLine($"{a}: input ({n}, {c}, {h}, {w}) -> output {Tensor<float>.ShapeString(result.OutputShape)} in {result.Milliseconds:F1} ms");
                Console.WriteLine("image 0, top 5 (class: probability): " + string.Join(", ", result.Top5.Select(t => $"{t.Class}: {t.Probability:F4}")));
            }
            return ExitCodes.Ok;
        });
        return cmd;
    }

    private const long MaxActivationBytes = 8L << 30;

    /// <summary>
    /// Each layer of the layered path keeps its output (and in training its gradient), so the activations of every
    /// layer are live at once: refuse, with the figure, what would not fit instead of running out of memory.
    /// </summary>
    public static void CheckMemory(ResNet<float> model, string arch, int c, int h, int w, int images)
    {
        long bytes;
        try { bytes = model.Summarize(c, h, w).Layers.Sum(l => l.OutputShape[1..].Aggregate(1L, (a, d) => a * d)) * images * sizeof(float); }
        catch (ShapeMismatchException e) { throw new CliException($"input {c}x{h}x{w} does not fit {arch}: {e.Message}"); }
        if (bytes > MaxActivationBytes)
            throw new CliException($"a batch of {images} at {c}x{h}x{w} needs about {bytes / (1L << 30)} GiB of activations for {arch}; the limit is {MaxActivationBytes >> 30} GiB");
    }

    public sealed record Prediction(int Class, float Probability);
    public sealed record ForwardResult(int[] OutputShape, double Milliseconds, Prediction[] Top5);

    public static ForwardResult Run(string arch, int c, int h, int w, int n, int? classes, bool small, int seed)
    {
        var model = CommonOptions.Build(arch, c, classes, small, seed);
        model.Eval();
        CheckMemory(model, arch, c, h, w, n);
        var x = new Tensor<float>(n, c, h, w);
        var rng = new Random(seed + 1);
        var xs = x.Span;
        for (int i = 0; i < xs.Length; i++) xs[i] = (float)Init.StandardNormal(rng);
        Tensor<float> y;
        var sw = Stopwatch.StartNew();
        try { y = model.Forward(x); }
        catch (ShapeMismatchException e) { throw new CliException($"input {c}x{h}x{w} does not fit {arch}: {e.Message}"); }
        sw.Stop();
        int k = y.Dim(1);
        var row = y.Span[..k].ToArray();
        float max = row.Max();
        var exp = row.Select(v => MathF.Exp(v - max)).ToArray();
        float sum = exp.Sum();
        var top = exp.Select((e, i) => new Prediction(i, e / sum)).OrderByDescending(p => p.Probability).Take(5).ToArray();
        return new ForwardResult(y.ShapeArray, sw.Elapsed.TotalMilliseconds, top);
    }
}
