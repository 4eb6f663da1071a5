using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Tests.Support;

/// <summary>
/// Central finite differences in double: for L = Σ f(x)·r with a fixed random r, compares every analytic gradient
/// entry (all of them for small tensors, a sample for large ones) with (L(v+h) − L(v−h)) / 2h.
/// </summary>
public static class GradCheck
{
    public const double Step = 1e-6;
    public const double Tolerance = 1e-6;

    public static Tensor<double> Random(Random rng, params int[] shape)
    {
        var t = new Tensor<double>(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = Init.StandardNormal(rng);
        return t;
    }

    /// <summary>Returns a list of mismatches (empty when the module's backward agrees with finite differences).</summary>
    public static List<string> Check(Module<double> module, int[] inputShape, int seed = 1, int samplesPerTensor = 40,
        bool checkInput = true, Action<Module<double>>? tamper = null)
    {
        var rng = new Random(seed);
        var x = Random(rng, inputShape);
        var y = module.Forward(x);
        var r = Random(rng, y.ShapeArray);
        double Loss()
        {
            var o = module.Forward(x).Span;
            double s = 0;
            for (int i = 0; i < o.Length; i++) s += o[i] * r.Span[i];
            return s;
        }
        module.Forward(x);
        module.ZeroGrad();
        var dx = module.Backward(r)?.Clone();
        tamper?.Invoke(module);

        var failures = new List<string>();
        if (checkInput) Compare("input", x, dx!, Loss, rng, samplesPerTensor, failures);
        foreach (var (name, p) in module.NamedParameters())
            Compare(name, p.Value, p.Grad, Loss, rng, samplesPerTensor, failures);
        return failures;
    }

    /// <summary>The same check for a network ending in softmax cross-entropy: L = CE(model(x), targets).</summary>
    public static List<string> CheckWithLoss(Module<double> model, Tensor<double> x, int[] targets, double labelSmoothing, int seed, int samplesPerTensor,
        bool checkInput = true)
    {
        var rng = new Random(seed);
        var loss = new SoftmaxCrossEntropy<double>(labelSmoothing);
        double Loss() => loss.Forward(model.Forward(x), targets);
        Loss();
        model.ZeroGrad();
        var dx = model.Backward(loss.Backward())?.Clone();
        var failures = new List<string>();
        if (checkInput) Compare("input", x, dx!, Loss, rng, samplesPerTensor, failures);
        foreach (var (name, p) in model.NamedParameters())
            Compare(name, p.Value, p.Grad, Loss, rng, samplesPerTensor, failures);
        return failures;
    }

    private static void Compare(string name, Tensor<double> value, Tensor<double> analytic, Func<double> loss, Random rng, int samples, List<string> failures)
    {
        int length = value.Length;
        var indices = length <= samples ? Enumerable.Range(0, length).ToArray() : Enumerable.Range(0, samples).Select(_ => rng.Next(length)).ToArray();
        foreach (int i in indices)
        {
            double original = value.Span[i];
            value.Span[i] = original + Step;
            double plus = loss();
            value.Span[i] = original - Step;
            double minus = loss();
            value.Span[i] = original;
            double numeric = (plus - minus) / (2 * Step);
            double a = analytic.Span[i];
            if (Math.Abs(a - numeric) > Tolerance * Math.Max(1.0, Math.Max(Math.Abs(a), Math.Abs(numeric))))
                failures.Add($"{name}[{i}]: analytic {a:G10}, numeric {numeric:G10}");
        }
    }
}
