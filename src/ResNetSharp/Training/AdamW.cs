using System.Numerics;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Training;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov and Hutter 2019), as torch.optim.AdamW:
/// p ← p − lr·wd·p; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε).
/// </summary>
public sealed class AdamW<T> : IOptimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly List<(Parameter<T> Parameter, Tensor<T> M, Tensor<T> V, bool Decay)> _state = [];
    private long _steps;

    /// <summary>torch.optim.AdamW's defaults; <paramref name="decayNormAndBias"/> false leaves BN parameters and biases out of the decay.</summary>
    public AdamW(IEnumerable<Parameter<T>> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double epsilon = 1e-8, double weightDecay = 0.01, bool decayNormAndBias = true)
    {
        if (!(learningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "learning rate must be >= 0");
        if (!(beta1 is >= 0 and < 1) || !(beta2 is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), "betas must be in [0, 1)");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be > 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be >= 0");
        LearningRate = learningRate; Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon; WeightDecay = weightDecay;
        foreach (var p in parameters)
            _state.Add((p, new Tensor<T>(p.Value.ShapeArray), new Tensor<T>(p.Value.ShapeArray), decayNormAndBias || p.Role == ParameterRole.Weight));
    }

    public string Name => "adamw";
    public double LearningRate { get; set; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Epsilon { get; }
    public double WeightDecay { get; }
    public long StepCount => _steps;

    public IReadOnlyList<(string Name, Tensor<T> Value)> StateTensors =>
        [.. _state.SelectMany((s, i) => new[] { ($"{i}.exp_avg", s.M), ($"{i}.exp_avg_sq", s.V) })];

    public void RestoreStepCount(long steps) => _steps = steps >= 0 ? steps : throw new ArgumentOutOfRangeException(nameof(steps));

    public void Step()
    {
        _steps++;
        // Bias corrections in double: 1 − β2ᵗ is tiny in the first steps.
        double c1 = 1 - Math.Pow(Beta1, _steps), c2 = 1 - Math.Pow(Beta2, _steps);
        T b1 = T.CreateTruncating(Beta1), b2 = T.CreateTruncating(Beta2);
        T oneMinusB1 = T.One - b1, oneMinusB2 = T.One - b2;
        T stepSize = T.CreateTruncating(LearningRate / c1), invSqrtC2 = T.CreateTruncating(1 / Math.Sqrt(c2));
        T eps = T.CreateTruncating(Epsilon);
        foreach (var (p, mBuf, vBuf, decay) in _state)
        {
            T shrink = T.One - T.CreateTruncating(decay ? LearningRate * WeightDecay : 0);
            var w = p.Value.Span; var g = p.Grad.Span; var m = mBuf.Span; var v = vBuf.Span;
            for (int i = 0; i < w.Length; i++)
            {
                w[i] *= shrink;
                m[i] = b1 * m[i] + oneMinusB1 * g[i];
                v[i] = b2 * v[i] + oneMinusB2 * g[i] * g[i];
                w[i] -= stepSize * m[i] / (T.Sqrt(v[i]) * invSqrtC2 + eps);
            }
        }
    }
}
