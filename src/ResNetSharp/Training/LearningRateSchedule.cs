namespace ResNetSharp.Training;

/// <summary>The learning-rate schedules: a function of the step, evaluated before each optimiser step.</summary>
public enum ScheduleKind { Constant, Step, MultiStep, Cosine }

/// <summary>
/// lr(step) = warm-up × decay. Step and multi-step decay by <see cref="Gamma"/> at epoch boundaries (every
/// <see cref="StepEpochs"/>, or at each of <see cref="Milestones"/>), as torch's StepLR/MultiStepLR stepped once an
/// epoch. Cosine anneals per step from the base rate to <see cref="MinLearningRate"/> over the steps after warm-up.
/// Linear warm-up rises from <see cref="WarmupStartFactor"/>·lr to lr over the first <see cref="WarmupEpochs"/>.
/// </summary>
public sealed record LearningRateSchedule
{
    public ScheduleKind Kind { get; init; } = ScheduleKind.Cosine;
    public double BaseLearningRate { get; init; } = 0.1;
    public int TotalEpochs { get; init; } = 1;
    public int StepsPerEpoch { get; init; } = 1;
    public int StepEpochs { get; init; } = 30;
    public int[] Milestones { get; init; } = [];
    public double Gamma { get; init; } = 0.1;
    public double MinLearningRate { get; init; }
    public double WarmupEpochs { get; init; }
    public double WarmupStartFactor { get; init; } = 0.1;

    public void Validate()
    {
        if (!(BaseLearningRate > 0) || !double.IsFinite(BaseLearningRate)) throw new ArgumentException($"learning rate must be positive and finite, got {BaseLearningRate}");
        if (TotalEpochs <= 0 || StepsPerEpoch <= 0) throw new ArgumentException("epochs and steps per epoch must be positive");
        if (Kind == ScheduleKind.Step && StepEpochs <= 0) throw new ArgumentException($"step schedule: step size must be positive epochs, got {StepEpochs}");
        if (Kind == ScheduleKind.MultiStep && (Milestones.Length == 0 || Milestones.Any(m => m <= 0) || !Milestones.SequenceEqual(Milestones.Order())))
            throw new ArgumentException("multi-step schedule: milestones must be increasing positive epochs");
        if (!(Gamma > 0 && Gamma <= 1)) throw new ArgumentException($"gamma must be in (0, 1], got {Gamma}");
        if (!(WarmupEpochs >= 0) || WarmupEpochs >= TotalEpochs) throw new ArgumentException($"warm-up ({WarmupEpochs} epochs) must be shorter than training ({TotalEpochs})");
        if (!(WarmupStartFactor is > 0 and <= 1)) throw new ArgumentException($"warm-up start factor must be in (0, 1], got {WarmupStartFactor}");
        if (!(MinLearningRate >= 0) || MinLearningRate > BaseLearningRate) throw new ArgumentException("minimum learning rate must be in [0, lr]");
    }

    /// <summary>The learning rate for step <paramref name="step"/> (0-based, counted over the whole run).</summary>
    public double At(long step)
    {
        long total = (long)TotalEpochs * StepsPerEpoch;
        long warm = (long)Math.Round(WarmupEpochs * StepsPerEpoch);
        int epoch = (int)(step / StepsPerEpoch);
        double lr = Kind switch
        {
            ScheduleKind.Constant => BaseLearningRate,
            ScheduleKind.Step => BaseLearningRate * Math.Pow(Gamma, epoch / StepEpochs),
            ScheduleKind.MultiStep => BaseLearningRate * Math.Pow(Gamma, Milestones.Count(m => m <= epoch)),
            ScheduleKind.Cosine => step < warm ? BaseLearningRate
                : MinLearningRate + (BaseLearningRate - MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1.0, (double)(step - warm) / Math.Max(1, total - warm)))),
            _ => throw new InvalidOperationException(),
        };
        if (step < warm) lr *= WarmupStartFactor + (1 - WarmupStartFactor) * step / warm;
        return lr;
    }
}
