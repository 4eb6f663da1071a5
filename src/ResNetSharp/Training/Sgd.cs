using System.Numerics;
using ResNetSharp.NN;
using ResNetSharp.Tensors;

namespace ResNetSharp.Training;

/// <summary>
/// Stochastic gradient descent with momentum, as torch.optim.SGD (dampening 0):
/// g ← ∇ + wd·p; on the first step buf ← g, then buf ← μ·buf + g; p ← p − lr·(nesterov ? g + μ·buf : buf).
/// </summary>
public sealed class Sgd<T> : IOptimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly List<(Parameter<T> Parameter, Tensor<T> Momentum, bool Decay)> _state = [];
    private long _steps;

    /// <param name="parameters">The parameters to update.</param>
    /// <param name="learningRate">lr; may be changed between steps by a schedule.</param>
    /// <param name="momentum">μ.</param>
    /// <param name="weightDecay">wd, the L2 coefficient added to the gradient.</param>
    /// <param name="nesterov">Nesterov momentum.</param>
    /// <param name="decayNormAndBias">When false, BN parameters and biases are left out of the weight decay.</param>
    public Sgd(IEnumerable<Parameter<T>> parameters, double learningRate, double momentum = 0, double weightDecay = 0,
        bool nesterov = false, bool decayNormAndBias = true)
    {
        if (!(learningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "learning rate must be >= 0");
        if (!(momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be >= 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be >= 0");
        if (nesterov && momentum == 0) throw new ArgumentException("Nesterov momentum needs a momentum above 0");
        LearningRate = learningRate; Momentum = momentum; WeightDecay = weightDecay; Nesterov = nesterov;
        foreach (var p in parameters)
            _state.Add((p, new Tensor<T>(p.Value.ShapeArray), decayNormAndBias || p.Role == ParameterRole.Weight));
    }

    public string Name => "sgd";
    public double LearningRate { get; set; }
    public long StepCount => _steps;
    public double Momentum { get; }
    public double WeightDecay { get; }
    public bool Nesterov { get; }

    /// <summary>The momentum buffers, in parameter order (the optimiser state a checkpoint saves).</summary>
    public IEnumerable<Tensor<T>> MomentumBuffers => _state.Select(s => s.Momentum);

    public IReadOnlyList<(string Name, Tensor<T> Value)> StateTensors =>
        Momentum == 0 ? [] : [.. _state.Select((s, i) => ($"{i}.momentum_buffer", s.Momentum))];

    public void RestoreStepCount(long steps) => _steps = steps >= 0 ? steps : throw new ArgumentOutOfRangeException(nameof(steps));

    public void Step()
    {
        T lr = T.CreateTruncating(LearningRate), mu = T.CreateTruncating(Momentum);
        foreach (var (p, buf, decay) in _state)
        {
            T wd = decay ? T.CreateTruncating(WeightDecay) : T.Zero;
            var w = p.Value.Span; var g = p.Grad.Span; var b = buf.Span;
            for (int i = 0; i < w.Length; i++)
            {
                T d = g[i] + wd * w[i];
                if (Momentum != 0)
                {
                    b[i] = _steps > 0 ? mu * b[i] + d : d;
                    d = Nesterov ? d + mu * b[i] : b[i];
                }
                w[i] -= lr * d;
            }
        }
        _steps++;
    }
}
