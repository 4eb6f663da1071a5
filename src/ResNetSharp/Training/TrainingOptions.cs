using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNetSharp.Training;

/// <summary>Everything that decides a training run besides the model and the data. Saved in every checkpoint.</summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    /// <summary>"sgd" or "adamw".</summary>
    public string Optimizer { get; init; } = "sgd";
    public double LearningRate { get; init; } = 0.1;
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; } = true;
    public double WeightDecay { get; init; } = 5e-4;
    /// <summary>Apply weight decay to BN parameters and biases too (PyTorch's default; off here, as in Goyal et al.).</summary>
    public bool DecayNormAndBias { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;
    public int StepEpochs { get; init; } = 30;
    public int[] Milestones { get; init; } = [];
    public double Gamma { get; init; } = 0.1;
    public double WarmupEpochs { get; init; }
    public double LabelSmoothing { get; init; }
    /// <summary>Seeds the weights, the shuffle and the augmentation.</summary>
    public int Seed { get; init; }

    public void Validate()
    {
        if (Epochs is <= 0 or > 100_000) throw new ArgumentException($"epochs must be in 1..100000, got {Epochs}");
        if (BatchSize is <= 0 or > 4096) throw new ArgumentException($"batch size must be in 1..4096, got {BatchSize}");
        if (Optimizer is not ("sgd" or "adamw")) throw new ArgumentException($"optimizer must be sgd or adamw, got '{Optimizer}'");
        if (!(Momentum is >= 0 and < 1)) throw new ArgumentException($"momentum must be in [0, 1), got {Momentum}");
        if (!(WeightDecay >= 0) || !double.IsFinite(WeightDecay)) throw new ArgumentException($"weight decay must be >= 0, got {WeightDecay}");
        if (!(Beta1 is >= 0 and < 1) || !(Beta2 is >= 0 and < 1)) throw new ArgumentException($"Adam betas must be in [0, 1), got {Beta1} and {Beta2}");
        if (!(LabelSmoothing is >= 0 and < 1)) throw new ArgumentException($"label smoothing must be in [0, 1), got {LabelSmoothing}");
        if (Optimizer == "sgd" && Nesterov && Momentum == 0) throw new ArgumentException("Nesterov momentum needs a momentum above 0");
        MakeSchedule(1).Validate();
    }

    /// <summary>The learning-rate schedule for this run.</summary>
    public LearningRateSchedule MakeSchedule(int stepsPerEpoch) => new()
    {
        Kind = Schedule, BaseLearningRate = LearningRate, TotalEpochs = Epochs, StepsPerEpoch = stepsPerEpoch,
        StepEpochs = StepEpochs, Milestones = Milestones, Gamma = Gamma, WarmupEpochs = WarmupEpochs,
    };

    /// <summary>snake_case names and enums as strings: the JSON of checkpoints and metrics.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,  // "NaN" for a best accuracy not measured yet
        WriteIndented = false,
    };
}
