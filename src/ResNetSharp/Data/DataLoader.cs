using System.Collections.Concurrent;
using System.Diagnostics;
using ResNetSharp.Tensors;

namespace ResNetSharp.Data;

/// <summary>A batch: NCHW images, their labels and their indices in the data set.</summary>
public sealed record Batch(Tensor<float> Images, int[] Labels, int[] Indices)
{
    public int Count => Labels.Length;
}

/// <summary>
/// Batches of a data set, shuffled per epoch by a seeded permutation and transformed, prepared ahead on background
/// threads so that the engine does not wait. Batch b of an epoch is built by worker b mod <c>workers</c>; the
/// consumer takes them in order, so the sequence of batches is the same for any worker count.
/// <see cref="WaitTime"/> is how long the consumer was blocked waiting for data: the measurement that shows
/// whether the pipeline keeps up.
/// </summary>
public sealed class DataLoader
{
    private readonly IDataset _data;
    private readonly ITransform? _transform;
    private readonly int _workers, _prefetch;
    private long _waitTicks;

    public DataLoader(IDataset data, int batchSize, int channels, int height, int width, ITransform? transform = null,
        bool shuffle = false, int seed = 0, bool dropLast = false, int workers = 1, int prefetch = 4)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        if (workers <= 0 || prefetch <= 0) throw new ArgumentOutOfRangeException(nameof(workers), "workers and prefetch must be positive");
        if (data.Count == 0) throw new ArgumentException($"{data.Source} has no images");
        _data = data; _transform = transform; _workers = workers; _prefetch = prefetch;
        BatchSize = batchSize; Channels = channels; Height = height; Width = width;
        Shuffle = shuffle; Seed = seed; DropLast = dropLast;
        if (dropLast && data.Count < batchSize)
            throw new ArgumentException($"{data.Source} has {data.Count} images, fewer than one batch of {batchSize}");
    }

    public IDataset Data => _data;
    public int BatchSize { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public bool Shuffle { get; }
    public int Seed { get; }
    public bool DropLast { get; }
    public int BatchesPerEpoch => DropLast ? _data.Count / BatchSize : (_data.Count + BatchSize - 1) / BatchSize;
    public int ImagesPerEpoch => DropLast ? BatchesPerEpoch * BatchSize : _data.Count;

    /// <summary>Total time the consumer spent blocked waiting for a batch, since construction.</summary>
    public TimeSpan WaitTime => TimeSpan.FromTicks(Interlocked.Read(ref _waitTicks) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);

    /// <summary>The order of the data set in epoch <paramref name="epoch"/> (a function of the seed and the epoch only).</summary>
    public int[] Order(int epoch) =>
        Shuffle ? SplitMix.Permutation(_data.Count, SplitMix.For(Seed, epoch, -1)) : [.. Enumerable.Range(0, _data.Count)];  // samples use keys >= 1

    /// <summary>Builds batch <paramref name="b"/> of an epoch (the work a background thread does).</summary>
    public Batch BuildBatch(int epoch, int[] order, int b)
    {
        int start = b * BatchSize, n = Math.Min(BatchSize, order.Length - start);
        int per = Channels * Height * Width;
        var images = new Tensor<float>(n, Channels, Height, Width);
        var labels = new int[n];
        var indices = new int[n];
        var dst = images.Span;
        for (int i = 0; i < n; i++)
        {
            int index = order[start + i];
            var sample = _data.Read(index);
            if (_transform is not null)
            {
                var rng = SplitMix.For(Seed, epoch, index + 1);
                sample = _transform.Apply(sample, ref rng);
            }
            if (sample.Channels != Channels || sample.Height != Height || sample.Width != Width)
                throw new InvalidDataException($"{_data.Source}: image {index} is {sample.Channels}x{sample.Height}x{sample.Width} after the transforms, " +
                    $"the batch needs {Channels}x{Height}x{Width}");
            sample.Pixels.AsSpan(0, per).CopyTo(dst.Slice(i * per, per));
            labels[i] = sample.Label;
            indices[i] = index;
        }
        return new Batch(images, labels, indices);
    }

    /// <summary>
    /// The batches of one epoch, from batch <paramref name="firstBatch"/> on, prepared ahead by the background workers.
    /// Leaving the loop early stops the workers.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0)
    {
        var order = Order(epoch);
        int count = BatchesPerEpoch;
        if (firstBatch >= count) yield break;
        using var cancel = new CancellationTokenSource();
        var queues = new BlockingCollection<(Batch? Batch, Exception? Error)>[_workers];
        var threads = new Thread[_workers];
        for (int w = 0; w < _workers; w++)
        {
            var queue = queues[w] = new BlockingCollection<(Batch?, Exception?)>(Math.Max(1, _prefetch / _workers));
            int worker = w;
            threads[w] = new Thread(() =>
            {
                try
                {
                    for (int b = firstBatch + worker; b < count && !cancel.IsCancellationRequested; b += _workers)
                    {
                        (Batch?, Exception?) item;
                        try { item = (BuildBatch(epoch, order, b), null); }
                        catch (Exception e) { item = (null, e); }
                        queue.Add(item, cancel.Token);
                        if (item.Item2 is not null) break;
                    }
                }
                catch (OperationCanceledException) { }
                finally { queue.CompleteAdding(); }
            }) { IsBackground = true, Name = $"DataLoader worker {w}" };
            threads[w].Start();
        }
        try
        {
            for (int b = firstBatch; b < count; b++)
            {
                long t0 = Stopwatch.GetTimestamp();
                var (batch, error) = queues[(b - firstBatch) % _workers].Take();
                Interlocked.Add(ref _waitTicks, Stopwatch.GetTimestamp() - t0);
                if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
                yield return batch!;
            }
        }
        finally
        {
            cancel.Cancel();
            foreach (var t in threads) t.Join();
            foreach (var q in queues) q.Dispose();
        }
    }
}
