using ResNetSharp.Data;
using ResNetSharp.Models;
using ResNetSharp.NN;

namespace ResNetSharp.Training;

/// <summary>Accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted).</summary>
public sealed record EvaluationResult(int Count, double Accuracy, double Loss, IReadOnlyList<string> Classes, double[] PerClassAccuracy, int[][] Confusion);

public static class Evaluation
{
    /// <summary>Runs the model in evaluation mode over every batch of <paramref name="loader"/>.</summary>
    public static EvaluationResult Evaluate(IImageModel model, DataLoader loader)
    {
        if (!model.HasClassifier) throw new ArgumentException("the model has no classifier (a feature extractor), so it cannot be evaluated for accuracy");
        var classes = loader.Data.Classes;
        int k = classes.Count;
        var confusion = new int[k][];
        for (int i = 0; i < k; i++) confusion[i] = new int[k];
        var loss = new SoftmaxCrossEntropy<float>();
        double lossSum = 0;
        int count = 0, correct = 0;
        foreach (var batch in loader.Epoch(0))
        {
            var logits = model.Logits(batch.Images);
            if (logits.Rank != 2 || logits.Dim(1) != k)
                throw new ArgumentException($"the model gives {Tensors.Tensor<float>.ShapeString(logits.Shape)} scores, the data set {loader.Data.Source} has {k} classes");
            lossSum += loss.Forward(logits, batch.Labels) * batch.Count;
            var predicted = ArgMax(logits);
            for (int i = 0; i < batch.Count; i++)
            {
                confusion[batch.Labels[i]][predicted[i]]++;
                if (predicted[i] == batch.Labels[i]) correct++;
            }
            count += batch.Count;
        }
        var perClass = confusion.Select((row, c) => row.Sum() == 0 ? double.NaN : (double)row[c] / row.Sum()).ToArray();
        return new EvaluationResult(count, (double)correct / count, lossSum / count, classes, perClass, confusion);
    }

    /// <summary>Index of the largest score in each row (first one on ties).</summary>
    public static int[] ArgMax(Tensors.Tensor<float> logits)
    {
        int n = logits.Dim(0), k = logits.Length / n;
        var s = logits.Span;
        var result = new int[n];
        for (int i = 0; i < n; i++)
        {
            var row = s.Slice(i * k, k);
            int best = 0;
            for (int j = 1; j < k; j++) if (row[j] > row[best]) best = j;
            result[i] = best;
        }
        return result;
    }
}
