using System.Runtime.Intrinsics;
using ResNetSharp;
using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Packed;
using ResNetSharp.Kernels.Reference;
using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

// Checks every fast float path against its reference on whatever ISA this process was given, and prints which
// kernel ran. Exit code 0 when all agree; the failures are printed one per line otherwise.
var failures = new List<string>();
Engine.Threads = 2;
Console.WriteLine($"isa={PackedGemm.Isa} vector512={Vector512.IsHardwareAccelerated} vector256={Vector256.IsHardwareAccelerated} vector128={Vector128.IsHardwareAccelerated}");

var rng = new Random(7);
float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
void Close(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tol)
{
    for (int i = 0; i < expected.Length; i++)
        if (!(Math.Abs(expected[i] - actual[i]) <= tol)) { failures.Add($"{what}[{i}]: expected {expected[i]}, got {actual[i]}"); return; }
}

int nr = PackedGemm.NR;
// batch, ic, h, w, oc, k, stride, pad: 1, odd, around the 6-row tile and the NR panel, large.
var geometries = new (int, int, int, int, int, int, int, int)[]
{
    (1, 1, 1, 1, 1, 1, 1, 0), (1, 3, 5, 7, nr - 1, 3, 1, 1), (2, 5, 6, 1, nr, 1, 1, 0), (1, 4, 7, 1, nr + 1, 1, 1, 0),
    (1, 7, 5, 1, 2 * nr, 1, 1, 0), (2, 16, 9, 9, 2 * nr + 3, 3, 1, 1), (1, 3, 17, 15, 64, 7, 2, 3), (1, 600, 4, 4, 33, 3, 1, 1),
    (1, 600, 4, 4, nr, 3, 1, 1), (3, 9, 10, 11, 70, 3, 2, 1), (5, 3, 9, 9, 65, 3, 1, 1),
};
foreach (var (batch, ic, h, w, oc, k, stride, pad) in geometries)
{
    var g = new ConvGeometry(ic, h, w, oc, k, k, stride, pad);
    string name = $"conv b{batch} ic{ic} {h}x{w} oc{oc} k{k} s{stride} p{pad}";
    var x = R(batch * g.InImage); var wt = R(g.WeightSize); var dy = R(batch * g.OutImage);
    double tol = 2e-6 * g.PatchSize;

    // Training path (NCHW, packed im2col) forward and backward against the direct reference.
    var yRef = new float[dy.Length]; var y = new float[dy.Length];
    Conv2dReference.Forward<float>(g, batch, x, wt, default, yRef);
    Conv2dKernel.Forward<float>(g, batch, x, wt, default, y, default);
    Close(name + " forward", yRef, y, tol);
    var dxRef = new float[x.Length]; var dwRef = new float[wt.Length]; var dx = new float[x.Length]; var dw = new float[wt.Length];
    Conv2dReference.Backward<float>(g, batch, x, wt, dy, dxRef, dwRef, default);
    Conv2dKernel.Backward<float>(g, batch, x, wt, dy, dx, dw, default, default);
    Close(name + " dx", dxRef, dx, 2e-6 * oc * k * k);
    Close(name + " dw", dwRef, dw, 2e-6 * batch * g.OutPlane);

    // Inference path (NHWC, indirection) against the same reference.
    unsafe
    {
        var xNhwc = new float[x.Length]; NhwcConv.ToNhwc(x, xNhwc, batch, ic, h, w);
        var yNhwc = new float[y.Length];
        fixed (float* xp = xNhwc) fixed (float* yp = yNhwc)
            NhwcConv.Forward(g, batch, PackedWeights.FromOihw(wt, oc, ic, k * k, default, default), NhwcConv.BuildOffsets(g, batch), xp, yp, null, relu: false);
        var back = new float[y.Length]; NhwcConv.ToNchw(yNhwc, back, batch, oc, g.OutHeight, g.OutWidth);
        Close(name + " NHWC forward", yRef, back, tol);
    }
}

// Winograd F(4x4,3x3) and F(2x2,3x3) against the direct reference (bias and ReLU on), at tile edges; shapes whose
// transformed weights fit in 1 MB run in per-thread chunks of tiles (Winograd.TakesChunks), the 128x80-channel one
// with F(4x4) (1.5 MB) over the whole batch.
foreach (int tile in new[] { 4, 2 })
foreach (var (batch, ic, h, w, oc) in new[] { (1, 16, 1, 1, 16), (2, 32, 5, 7, 16), (1, 64, 14, 14, 80), (3, 16, 9, 3, 48), (1, 128, 7, 7, 80), (4, 16, 121, 119, 16), (2, 16, 131, 129, 16) })
{
    var g = new ConvGeometry(ic, h, w, oc, 3, 3, 1, 1);
    var x = R(batch * g.InImage); var wt = R(g.WeightSize); var bias = R(oc);
    var yRef = new float[batch * g.OutImage];
    Conv2dReference.Forward<float>(g, batch, x, wt, bias, yRef);
    for (int i = 0; i < yRef.Length; i++) yRef[i] = Math.Max(0, yRef[i]);
    int tiles = Winograd.TileCount(g, batch, tile);
    var rows = Enumerable.Range(0, tiles).Select(t => t * ic).ToArray();
    var v = new float[Winograd.Points(tile) * tiles * ic]; var m = new float[Winograd.Points(tile) * tiles * oc];
    var xNhwc = new float[x.Length]; NhwcConv.ToNhwc(x, xNhwc, batch, ic, h, w);
    var yNhwc = new float[yRef.Length];
    unsafe
    {
        fixed (float* xp = xNhwc) fixed (float* yp = yNhwc) fixed (float* bp = bias) fixed (float* vp = v) fixed (float* mp = m)
            Winograd.Forward(g, batch, Winograd.TransformWeights(wt, oc, ic, default, tile), bp, rows, xp, yp, null, relu: true, vp, mp);
    }
    var y = new float[yNhwc.Length]; NhwcConv.ToNchw(yNhwc, y, batch, oc, h, w);
    Close($"winograd F{tile} b{batch} ic{ic} {h}x{w} oc{oc}", yRef, y, 1e-4 * yRef.Max(Math.Abs));
}

// Elementwise and BN kernels against plain loops.
foreach (int n in new[] { 1, 7, 15, 16, 17, 1000, 70_001 })
{
    var a = R(n); var b = R(n); var yv = new float[n];
    Elementwise.Relu<float>(a, yv);
    Close($"relu n{n}", a.Select(v => Math.Max(v, 0f)).ToArray(), yv, 0);
    Elementwise.ReluBackward<float>(a, b, yv);
    Close($"relu backward n{n}", a.Zip(b, (p, q) => p > 0 ? q : 0f).ToArray(), yv, 0);
    Elementwise.Add<float>(a, b, yv);
    Close($"add n{n}", a.Zip(b, (p, q) => p + q).ToArray(), yv, 0);
}

// The float 3x3/2 max pool (its vectorised row split) against the generic loop run in double: values and argmax.
foreach (var (h, w) in new[] { (1, 1), (7, 7), (6, 21), (9, 40), (33, 47), (5, 53) })
{
    int planes = 3, oh = (h - 1) / 2 + 1, ow = (w - 1) / 2 + 1;
    var x = R(planes * h * w);
    var y = new float[planes * oh * ow]; var arg = new int[y.Length];
    var yd = new double[y.Length]; var argd = new int[y.Length];
    PoolKernels.MaxPoolForward<float>(planes, h, w, 3, 2, 1, x, y, arg);
    PoolKernels.MaxPoolForward<double>(planes, h, w, 3, 2, 1, x.Select(v => (double)v).ToArray(), yd, argd);
    Close($"max pool {h}x{w}", yd.Select(v => (float)v).ToArray(), y, 0);
    if (!arg.SequenceEqual(argd)) failures.Add($"max pool {h}x{w}: argmax differs from the double loop");
}

// Whole models: the fused evaluation path against the layered one.
foreach (var (arch, c, size) in new[] { ("resnet18", 3, 40), ("resnet50", 3, 33), ("resnet20", 1, 28) })
{
    var model = ResNets.Create(arch, new ResNetOptions { InChannels = c, Seed = 2 });
    var input = new Tensor<float>(2, c, size, size);
    var xs = R(input.Length); xs.CopyTo(input.Span);
    model.Eval();
    model.FusedInference = false;
    var layered = model.Forward(input).Clone();
    model.FusedInference = true;
    var fused = model.Forward(input);
    double scale = layered.Span.ToArray().Max(Math.Abs);
    Close($"{arch} fused vs layered", layered.Span, fused.Span, 1e-4 * scale);
}

foreach (var f in failures) Console.WriteLine("FAIL " + f);
Console.WriteLine(failures.Count == 0 ? "all kernels agree" : $"{failures.Count} failures");
return failures.Count == 0 ? 0 : 1;
