namespace ResNetSharp.Runtime;

/// <summary>
/// A persistent pool of worker threads for the kernels: <see cref="For"/> splits a range of independent tasks over
/// the calling thread and <see cref="Engine.Threads"/> − 1 workers. Workers spin briefly before sleeping, since a
/// forward pass issues a parallel loop every few hundred microseconds and waking a sleeping thread costs more.
/// One loop runs at a time; a loop started from inside a loop body runs serially on the caller.
/// </summary>
public static class WorkerPool
{
    private static readonly long SpinWaitTicks = System.Diagnostics.Stopwatch.Frequency / 10_000;  // 100 µs
    private static readonly object Gate = new();
    private static Worker[] _workers = [];
    [ThreadStatic] private static bool _insideLoop;

    /// <summary>Runs body(i) for i in [0, count), each exactly once, and returns when all are done.</summary>
    public static void For(int count, Action<int> body)
    {
        int threads = Math.Min(Engine.Threads, count);
        if (threads <= 1 || _insideLoop)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        lock (Gate)
        {
            EnsureWorkers(threads - 1);
            var job = new Job(count, body, threads - 1);
            for (int w = 0; w < threads - 1; w++) _workers[w].Start(job);
            _insideLoop = true;
            try { job.RunTasks(); }
            finally { _insideLoop = false; }
            job.WaitForWorkers();
            job.ThrowIfFailed();
        }
    }

    private static void EnsureWorkers(int needed)
    {
        if (_workers.Length >= needed) return;
        var grown = new Worker[needed];
        Array.Copy(_workers, grown, _workers.Length);
        for (int i = _workers.Length; i < needed; i++) grown[i] = new Worker(i);
        _workers = grown;
    }

    private sealed class Job(int count, Action<int> body, int workers)
    {
        private int _next = -1;
        private int _pendingWorkers = workers;
        private Exception? _error;
        private readonly ManualResetEventSlim _done = new(false);

        public void RunTasks()
        {
            int i;
            while ((i = Interlocked.Increment(ref _next)) < count)
            {
                try { body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            }
        }

        public void WorkerFinished()
        {
            if (Interlocked.Decrement(ref _pendingWorkers) == 0) _done.Set();
        }

        public void WaitForWorkers()
        {
            // The calling thread has run out of tasks and the others are finishing theirs, usually within
            // microseconds: spin (without yielding the core) for up to SpinWaitTicks before sleeping on the event,
            // whose wake-up costs tens of microseconds on a VM, once per parallel loop.
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            while (Volatile.Read(ref _pendingWorkers) > 0 && System.Diagnostics.Stopwatch.GetTimestamp() - start < SpinWaitTicks)
                Thread.SpinWait(20);
            _done.Wait();
            _done.Dispose();
        }

        public void ThrowIfFailed()
        {
            if (_error is not null) throw new AggregateException("a parallel kernel task failed", _error);
        }
    }

    private sealed class Worker
    {
        private Job? _job;
        private readonly SemaphoreSlim _wake = new(0);

        public Worker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"ResNetSharp worker {index + 1}" };
            thread.Start();
        }

        public void Start(Job job)
        {
            Volatile.Write(ref _job, job);
            _wake.Release();
        }

        private void Loop()
        {
            _insideLoop = true;
            while (true)
            {
                // Spin on the semaphore first: the next loop usually starts within microseconds.
                if (!_wake.Wait(0))
                {
                    var spin = new SpinWait();
                    bool woke = false;
                    for (int i = 0; i < 2000 && !woke; i++)
                    {
                        spin.SpinOnce(sleep1Threshold: -1);
                        woke = _wake.Wait(0);
                    }
                    if (!woke) _wake.Wait();
                }
                var job = Volatile.Read(ref _job)!;
                job.RunTasks();
                job.WorkerFinished();
            }
        }
    }
}
