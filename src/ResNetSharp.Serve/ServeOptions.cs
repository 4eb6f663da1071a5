namespace ResNetSharp.Serve;

/// <summary>Where the service listens, how it batches, and the limits that protect it.</summary>
public sealed record ServeOptions
{
    /// <summary>Address to bind: an IP address, "localhost", or "*" / "0.0.0.0" for every interface.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (see <see cref="InferenceServer.Address"/>).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Most images one model call takes; 1 turns batching off.</summary>
    public int MaxBatch { get; init; } = 16;
    /// <summary>How long the first request of a batch waits for others to join it.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>Largest request body (raw image or the whole multipart body); larger gets 413.</summary>
    public long MaxBodyBytes { get; init; } = 16L << 20;
    /// <summary>Largest image by its header's width x height; larger gets 413 before any pixel is decoded.</summary>
    public long MaxPixels { get; init; } = 50_000_000;
    /// <summary>How long a request may wait for the model (queue and inference); longer gets 503.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Requests waiting for the model at most; more get 503 at once.</summary>
    public int QueueLength { get; init; } = 256;
    /// <summary>Classes /v1/classify returns when the request does not say (?k=).</summary>
    public int DefaultTopK { get; init; } = 5;

    public void Validate()
    {
        if (Host is not ("localhost" or "*" or "0.0.0.0") && !System.Net.IPAddress.TryParse(Host, out _))
            throw new ArgumentException($"host '{Host}' is not an IP address, 'localhost' or '*'");
        if (Port is < 0 or > 65535) throw new ArgumentException($"port must be in 0..65535, got {Port}");
        if (MaxBatch is < 1 or > 4096) throw new ArgumentException($"max batch must be in 1..4096, got {MaxBatch}");
        if (MaxWait < TimeSpan.Zero || MaxWait > TimeSpan.FromSeconds(10)) throw new ArgumentException($"max wait must be in 0..10 s, got {MaxWait.TotalMilliseconds} ms");
        if (MaxBodyBytes < 1) throw new ArgumentException($"max body size must be positive, got {MaxBodyBytes}");
        if (MaxPixels < 1) throw new ArgumentException($"max pixels must be positive, got {MaxPixels}");
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentException($"request timeout must be positive, got {RequestTimeout}");
        if (QueueLength < 1) throw new ArgumentException($"queue length must be positive, got {QueueLength}");
        if (DefaultTopK < 1) throw new ArgumentException($"top-k must be positive, got {DefaultTopK}");
    }
}
