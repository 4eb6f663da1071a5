using ResNetSharp.IO;
using ResNetSharp.Training;
using ScottPlot;

namespace ResNetSharp.Cli;

/// <summary>curves.png: loss (left) and accuracy (right) per epoch, training and test, drawn with ScottPlot.</summary>
internal static class CurvePlot
{
    public static void Write(string path, IReadOnlyList<EpochMetrics> history, string title)
    {
        if (history.Count == 0) return;
        var plot = new Plot();
        double[] epochs = [.. history.Select(m => (double)m.Epoch)];
        var trainLoss = plot.Add.Scatter(epochs, [.. history.Select(m => m.TrainLoss)]);
        trainLoss.LegendText = "train loss";
        if (history.All(m => m.TestLoss is not null))
        {
            var testLoss = plot.Add.Scatter(epochs, [.. history.Select(m => m.TestLoss!.Value)]);
            testLoss.LegendText = "test loss";
        }
        var trainAcc = plot.Add.Scatter(epochs, [.. history.Select(m => 100 * m.TrainAccuracy)]);
        trainAcc.LegendText = "train accuracy (%)";
        trainAcc.Axes.YAxis = plot.Axes.Right;
        trainAcc.LinePattern = LinePattern.Dashed;
        if (history.All(m => m.TestAccuracy is not null))
        {
            var testAcc = plot.Add.Scatter(epochs, [.. history.Select(m => 100 * m.TestAccuracy!.Value)]);
            testAcc.LegendText = "test accuracy (%)";
            testAcc.Axes.YAxis = plot.Axes.Right;
            testAcc.LinePattern = LinePattern.Dashed;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.Axes.Right.Label.Text = "accuracy (%)";
        plot.ShowLegend(Alignment.MiddleRight);
        var bytes = plot.GetImageBytes(900, 500, ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
