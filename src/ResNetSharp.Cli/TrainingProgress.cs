using System.Diagnostics;
using ResNetSharp.Training;
using Spectre.Console;

namespace ResNetSharp.Cli;

/// <summary>
/// Shows training progress: a live bar with loss, accuracy, img/s and ETA on a terminal; plain lines (every few
/// seconds and at each epoch's end) when the output is redirected, where Spectre would print nothing.
/// </summary>
internal sealed class TrainingProgress
{
    private readonly int _epochs;
    private readonly bool _live = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
    private readonly Stopwatch _sinceLine = Stopwatch.StartNew();

    public TrainingProgress(int epochs) => _epochs = epochs;

    /// <summary>Runs the training loop inside the progress display.</summary>
    public void Run(Trainer trainer, Action train)
    {
        trainer.EpochCompleted += m => PrintEpoch(m);
        if (!_live)
        {
            trainer.BatchCompleted = b =>
            {
                if (_sinceLine.Elapsed.TotalSeconds < 10 || b.Batch == b.Batches) return;
                _sinceLine.Restart();
                Console.WriteLine($"  epoch {b.Epoch}/{_epochs} batch {b.Batch}/{b.Batches}  loss {b.Loss:F4}  acc {100 * b.Accuracy:F2}%  {b.ImagesPerSecond:F0} img/s  eta {Eta(b)}");
            };
            train();
            return;
        }
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask? task = null;
                trainer.BatchCompleted = b =>
                {
                    if (task is null || b.Batch == 1)
                    {
                        task?.StopTask();
                        task = ctx.AddTask($"epoch {b.Epoch}/{_epochs}", maxValue: b.Batches);
                    }
                    task.Value = b.Batch;
                    task.Description = $"epoch {b.Epoch}/{_epochs} loss {b.Loss:F4} acc {100 * b.Accuracy:F2}% {b.ImagesPerSecond:F0} img/s, run eta {Eta(b)}";
                };
                train();
                task?.StopTask();
            });
    }

    /// <summary>Time left in the run at this epoch's pace (evaluation not counted).</summary>
    private string Eta(BatchProgress b)
    {
        double perBatch = b.EpochSeconds / b.Batch;
        double seconds = perBatch * ((b.Batches - b.Batch) + (double)(_epochs - b.Epoch) * b.Batches);
        return TimeSpan.FromSeconds(Math.Round(seconds)).ToString();
    }

    private void PrintEpoch(EpochMetrics m)
    {
        string test = m.TestAccuracy is double a ? $"  test loss {m.TestLoss:F4}  test acc {100 * a:F2}%" : "";
        string line = $"epoch {m.Epoch}/{_epochs}  lr {m.LearningRate:G3}  train loss {m.TrainLoss:F4}  train acc {100 * m.TrainAccuracy:F2}%{test}  " +
                      $"{m.Seconds:F1} s  {m.ImagesPerSecond:F0} img/s  data wait {m.DataWaitSeconds:F2} s";
        if (_live) AnsiConsole.MarkupLine(Markup.Escape(line)); else Console.WriteLine(line);
    }
}
