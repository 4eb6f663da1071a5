using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Onnx;
using RTensor = ResNetSharp.Tensors.Tensor<float>;

// Usage: ResNetSharp.Interop MODEL_DIR  — prints a Markdown table: per model file and input, the largest absolute
// difference of our outputs from ONNX Runtime's and from torch's, relative to the output's scale max |ref|.
if (args.Length != 1 || !Directory.Exists(args[0]))
{
    Console.Error.WriteLine("usage: ResNetSharp.Interop MODEL_DIR (from tools/interop/export_torchvision.py)");
    return 2;
}
string dir = args[0];
int failures = 0;
Console.WriteLine("| model | input | ours vs ORT: max abs diff | scale max\\|ORT\\| | diff / scale | ours vs torch: diff / scale | ours s | ORT s |");
Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (var onnx in Directory.GetFiles(dir, "*.onnx").OrderBy(f => ArchOrder(f)).ThenBy(f => f))
{
    string arch = Path.GetFileNameWithoutExtension(onnx).Split('_')[0];
    var model = OnnxImageModel.Load(onnx);
    using var session = new InferenceSession(onnx, new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount });
    foreach (var key in new[] { "a", "b" })
    {
        var x = Npy.Read(Path.Combine(dir, $"{arch}.{key}.input.npy"));
        var torch = Npy.Read(Path.Combine(dir, $"{arch}.{key}.torch.npy"));
        var sw = Stopwatch.StartNew();
        var ours = model.Logits(x).Clone();
        double oursS = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var ort = RunOrt(session, x);
        double ortS = sw.Elapsed.TotalSeconds;
        var (d, s) = Diff(ours, ort);
        var (dt, st) = Diff(ours, torch);
        bool ok = d <= 1e-4 * s && dt <= 1e-4 * st;
        if (!ok) failures++;
        Console.WriteLine($"| {Path.GetFileName(onnx)} | {string.Join("x", x.ShapeArray)} | {d:E2} | {s:F3} | {d / s:E2} | {dt / st:E2} | {oursS:F2} | {ortS:F2} |{(ok ? "" : " FAIL")}");
    }
}
// The PyTorch ONNX files mapped onto native models (OnnxImporter.ToResNet, what `resnet convert` does), against torch.
Console.WriteLine();
Console.WriteLine("| ONNX mapped to native | input | native vs torch: max abs diff | scale max\\|torch\\| | diff / scale |");
Console.WriteLine("| --- | --- | ---: | ---: | ---: |");
foreach (var onnx in Directory.GetFiles(dir, "*_opset13.onnx").OrderBy(f => ArchOrder(f)))
{
    string arch = Path.GetFileNameWithoutExtension(onnx).Split('_')[0];
    var (mapped, meta) = OnnxImporter.ToResNet(onnx);
    if (meta.Architecture != arch) { failures++; Console.WriteLine($"| {Path.GetFileName(onnx)} | mapped to {meta.Architecture} | | | | FAIL"); continue; }
    mapped.Eval();
    foreach (var key in new[] { "a", "b" })
    {
        var x = Npy.Read(Path.Combine(dir, $"{arch}.{key}.input.npy"));
        var torch = Npy.Read(Path.Combine(dir, $"{arch}.{key}.torch.npy"));
        var (d, s) = Diff(mapped.Forward(x).Clone(), torch);
        bool ok = d <= 1e-4 * s;
        if (!ok) failures++;
        Console.WriteLine($"| {Path.GetFileName(onnx)} → {meta.Architecture} | {string.Join("x", x.ShapeArray)} | {d:E2} | {s:F3} | {d / s:E2} |{(ok ? "" : " FAIL")}");
    }
}
// The torchvision state dicts, loaded as native models (bare safetensors + architecture), against torch.
Console.WriteLine();
Console.WriteLine("| state dict | input | native vs torch: max abs diff | scale max\\|torch\\| | diff / scale |");
Console.WriteLine("| --- | --- | ---: | ---: | ---: |");
foreach (var st in Directory.GetFiles(dir, "*.safetensors").OrderBy(f => ArchOrder(f)))
{
    string arch = Path.GetFileNameWithoutExtension(st);
    var (native, _) = ModelFile.Load(st, arch);
    native.Eval();
    foreach (var key in new[] { "a", "b" })
    {
        var x = Npy.Read(Path.Combine(dir, $"{arch}.{key}.input.npy"));
        var torch = Npy.Read(Path.Combine(dir, $"{arch}.{key}.torch.npy"));
        var (d, s) = Diff(native.Forward(x).Clone(), torch);
        bool ok = d <= 1e-4 * s;
        if (!ok) failures++;
        Console.WriteLine($"| {Path.GetFileName(st)} | {string.Join("x", x.ShapeArray)} | {d:E2} | {s:F3} | {d / s:E2} |{(ok ? "" : " FAIL")}");
    }
}
Console.Error.WriteLine(failures == 0 ? "interop: every comparison within 1e-4 of the output scale" : $"interop: {failures} comparisons FAILED");
return failures == 0 ? 0 : 1;

static int ArchOrder(string f) => int.Parse(new string(Path.GetFileName(f)[6..].TakeWhile(char.IsDigit).ToArray()));

static RTensor RunOrt(InferenceSession session, RTensor x)
{
    var input = NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(),
        new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(x.Span.ToArray(), x.ShapeArray));
    using var results = session.Run([input]);
    var t = results.First().AsTensor<float>();
    return RTensor.FromArray(t.ToArray(), t.Dimensions.ToArray());
}

static (double Diff, double Scale) Diff(RTensor a, RTensor b)
{
    if (!a.Shape.SequenceEqual(b.Shape)) throw new InvalidDataException($"shapes differ: {a} vs {b}");
    double d = 0, s = 0;
    for (int i = 0; i < a.Length; i++)
    {
        d = Math.Max(d, Math.Abs((double)a.Span[i] - b.Span[i]));
        s = Math.Max(s, Math.Abs((double)b.Span[i]));
    }
    return (d, s);
}
