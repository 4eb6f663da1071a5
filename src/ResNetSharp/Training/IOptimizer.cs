using System.Numerics;
using ResNetSharp.Tensors;

namespace ResNetSharp.Training;

/// <summary>An optimiser: a step from the gradients, a learning rate a schedule may change, and a state to checkpoint.</summary>
public interface IOptimizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>"sgd" or "adamw".</summary>
    string Name { get; }
    double LearningRate { get; set; }
    /// <summary>Steps taken so far (part of the state: Adam's bias correction and SGD's first step depend on it).</summary>
    long StepCount { get; }
    void Step();

    /// <summary>The state buffers by name ("{index}.momentum_buffer", "{index}.exp_avg" …, index = parameter order), live views.</summary>
    IReadOnlyList<(string Name, Tensor<T> Value)> StateTensors { get; }

    /// <summary>Restores the step count after the state tensors were copied back (a checkpoint resume).</summary>
    void RestoreStepCount(long steps);
}
