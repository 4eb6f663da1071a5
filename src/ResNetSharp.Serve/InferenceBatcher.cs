using System.Diagnostics;
using System.Threading.Channels;
using ResNetSharp.Models;

namespace ResNetSharp.Serve;

/// <summary>What a request asks of the model.</summary>
public enum InferenceKind { Logits, Features }

/// <summary>The queue is full: the caller should answer 503.</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>
/// Dynamic batching in front of a model that is not thread-safe: requests queue (bounded), and one loop takes the
/// first waiting request, waits up to <see cref="ServeOptions.MaxWait"/> for more to join it, up to
/// <see cref="ServeOptions.MaxBatch"/>, and runs them as one batch per kind. Only this loop calls the model.
/// </summary>
public sealed class InferenceBatcher : IAsyncDisposable
{
    private sealed class Job(InferenceKind kind, float[] input)
    {
        public InferenceKind Kind { get; } = kind;
        public float[] Input { get; } = input;
        public TaskCompletionSource<float[]> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>Set when the caller stopped waiting (timeout, client gone): the loop skips the job.</summary>
        public volatile bool Abandoned;
    }

    private readonly IImageModel _model;
    private readonly int _c, _h, _w, _maxBatch;
    private readonly TimeSpan _maxWait;
    private readonly Channel<Job> _queue;
    private readonly ServerMetrics _metrics;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _depth;

    public InferenceBatcher(IImageModel model, int channels, int height, int width, ServeOptions options, ServerMetrics metrics)
    {
        _model = model;
        (_c, _h, _w) = (channels, height, width);
        _maxBatch = options.MaxBatch;
        _maxWait = options.MaxWait;
        _metrics = metrics;
        _queue = Channel.CreateBounded<Job>(new BoundedChannelOptions(options.QueueLength) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        metrics.QueueDepth = () => Volatile.Read(ref _depth);
        _loop = Task.Factory.StartNew(Loop, TaskCreationOptions.LongRunning).Unwrap();
    }

    /// <summary>
    /// Queues one preprocessed image (C*H*W floats) and waits for its row of logits or features. Throws
    /// <see cref="QueueFullException"/> when the queue is full, <see cref="OperationCanceledException"/> when
    /// <paramref name="cancel"/> fires first.
    /// </summary>
    public async Task<float[]> RunAsync(InferenceKind kind, float[] input, CancellationToken cancel)
    {
        if (input.Length != _c * _h * _w) throw new ArgumentException($"input has {input.Length} values, expected {_c * _h * _w}");
        var job = new Job(kind, input);
        if (!_queue.Writer.TryWrite(job)) throw new QueueFullException("the request queue is full; try again later");
        Interlocked.Increment(ref _depth);
        try { return await job.Result.Task.WaitAsync(cancel).ConfigureAwait(false); }
        catch (OperationCanceledException) { job.Abandoned = true; throw; }
    }

    private async Task Loop()
    {
        var reader = _queue.Reader;
        var batch = new List<Job>(_maxBatch);
        var token = _stop.Token;
        try
        {
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                batch.Clear();
                while (batch.Count < _maxBatch && reader.TryRead(out var j)) Take(batch, j);
                if (batch.Count == 0) continue;
                var deadline = Stopwatch.GetTimestamp() + (long)(_maxWait.TotalSeconds * Stopwatch.Frequency);
                while (batch.Count < _maxBatch)
                {
                    if (reader.TryRead(out var j)) { Take(batch, j); continue; }
                    long left = deadline - Stopwatch.GetTimestamp();
                    if (left <= 0) break;
                    using var wait = CancellationTokenSource.CreateLinkedTokenSource(token);
                    wait.CancelAfter(TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
                    try { if (!await reader.WaitToReadAsync(wait.Token).ConfigureAwait(false)) break; }
                    catch (OperationCanceledException) when (!token.IsCancellationRequested) { break; }
                }
                Run(batch, InferenceKind.Logits);
                Run(batch, InferenceKind.Features);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested) { }
        // Whatever is still queued at shutdown fails instead of hanging its caller.
        while (reader.TryRead(out var left)) left.Result.TrySetException(new ObjectDisposedException("the inference service is shutting down"));
    }

    private void Take(List<Job> batch, Job job)
    {
        Interlocked.Decrement(ref _depth);
        if (job.Abandoned) job.Result.TrySetCanceled();
        else batch.Add(job);
    }

    private void Run(List<Job> all, InferenceKind kind)
    {
        var jobs = all.Where(j => j.Kind == kind && !j.Abandoned).ToList();
        if (jobs.Count == 0) return;
        try
        {
            int size = _c * _h * _w;
            var x = new Tensors.Tensor<float>(jobs.Count, _c, _h, _w);
            for (int i = 0; i < jobs.Count; i++) jobs[i].Input.CopyTo(x.Span.Slice(i * size, size));
            long t0 = Stopwatch.GetTimestamp();
            var y = kind == InferenceKind.Logits ? _model.Logits(x) : _model.Features(x);
            _metrics.InferenceSeconds.Observe(Stopwatch.GetElapsedTime(t0).TotalSeconds);
            _metrics.BatchSize.Observe(jobs.Count);
            int row = y.Length / jobs.Count;
            // Copy each row out now: the model owns y and overwrites it on its next call.
            for (int i = 0; i < jobs.Count; i++) jobs[i].Result.TrySetResult(y.Span.Slice(i * row, row).ToArray());
        }
        catch (Exception e)
        {
            foreach (var j in jobs) j.Result.TrySetException(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        // A model call in progress cannot be interrupted; do not let one that hangs hang the shutdown too.
        try { await _loop.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        catch (TimeoutException) { return; }
        _stop.Dispose();
    }
}
