using System.Globalization;
using System.Text;

namespace ResNetSharp.Serve;

/// <summary>A Prometheus histogram: cumulative bucket counts, sum and count. Thread-safe.</summary>
public sealed class Histogram(double[] bounds)
{
    private readonly long[] _counts = new long[bounds.Length + 1];
    private double _sum;
    private long _count;
    private readonly Lock _lock = new();

    public IReadOnlyList<double> Bounds => bounds;

    public void Observe(double value)
    {
        int i = 0;
        while (i < bounds.Length && value > bounds[i]) i++;
        lock (_lock) { _counts[i]++; _sum += value; _count++; }
    }

    public (long[] Cumulative, double Sum, long Count) Snapshot()
    {
        lock (_lock)
        {
            var cum = new long[_counts.Length];
            long run = 0;
            for (int i = 0; i < _counts.Length; i++) cum[i] = run += _counts[i];
            return (cum, _sum, _count);
        }
    }

    internal void Write(StringBuilder sb, string name, string labels)
    {
        var (cum, sum, count) = Snapshot();
        string sep = labels.Length > 0 ? "," : "";
        for (int i = 0; i < bounds.Length; i++)
            sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels}{sep}le=\"{bounds[i].ToString(CultureInfo.InvariantCulture)}\"}} {cum[i]}\n");
        sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cum[^1]}\n");
        string braces = labels.Length > 0 ? $"{{{labels}}}" : "";
        sb.Append(CultureInfo.InvariantCulture, $"{name}_sum{braces} {sum.ToString("R", CultureInfo.InvariantCulture)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"{name}_count{braces} {count}\n");
    }
}

/// <summary>
/// The service's metrics in Prometheus text format (version 0.0.4): requests by endpoint and status, request latency
/// by endpoint, batch sizes and model time per batch, queue depth.
/// </summary>
public sealed class ServerMetrics
{
    private static readonly double[] LatencyBounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private readonly Dictionary<(string Endpoint, int Code), long> _requests = [];
    private readonly Dictionary<string, Histogram> _latency = [];
    private readonly Lock _lock = new();

    public ServerMetrics(int maxBatch)
    {
        var bounds = new List<double>();
        for (int b = 1; b < maxBatch; b *= 2) bounds.Add(b);
        bounds.Add(maxBatch);
        BatchSize = new Histogram([.. bounds]);
    }

    public Histogram BatchSize { get; }
    public Histogram InferenceSeconds { get; } = new(LatencyBounds);
    /// <summary>Requests waiting for the model now; set by the batcher.</summary>
    public Func<int> QueueDepth { get; set; } = () => 0;

    public void RecordRequest(string endpoint, int code, double seconds)
    {
        Histogram h;
        lock (_lock)
        {
            _requests[(endpoint, code)] = _requests.GetValueOrDefault((endpoint, code)) + 1;
            if (!_latency.TryGetValue(endpoint, out h!)) _latency[endpoint] = h = new Histogram(LatencyBounds);
        }
        h.Observe(seconds);
    }

    public long Requests(string endpoint, int code)
    {
        lock (_lock) return _requests.GetValueOrDefault((endpoint, code));
    }

    public string ToPrometheusText()
    {
        var sb = new StringBuilder();
        sb.Append("# HELP resnet_requests_total HTTP requests by endpoint and status code.\n# TYPE resnet_requests_total counter\n");
        KeyValuePair<(string Endpoint, int Code), long>[] requests;
        KeyValuePair<string, Histogram>[] latency;
        lock (_lock)
        {
            requests = [.. _requests.OrderBy(r => r.Key.Endpoint, StringComparer.Ordinal).ThenBy(r => r.Key.Code)];
            latency = [.. _latency.OrderBy(l => l.Key, StringComparer.Ordinal)];
        }
        foreach (var ((endpoint, code), n) in requests)
            sb.Append(CultureInfo.InvariantCulture, $"resnet_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {n}\n");
        sb.Append("# HELP resnet_request_duration_seconds Time from request start to response, by endpoint.\n# TYPE resnet_request_duration_seconds histogram\n");
        foreach (var (endpoint, h) in latency) h.Write(sb, "resnet_request_duration_seconds", $"endpoint=\"{endpoint}\"");
        sb.Append("# HELP resnet_batch_size Images per model call.\n# TYPE resnet_batch_size histogram\n");
        BatchSize.Write(sb, "resnet_batch_size", "");
        sb.Append("# HELP resnet_inference_duration_seconds Model time per batch.\n# TYPE resnet_inference_duration_seconds histogram\n");
        InferenceSeconds.Write(sb, "resnet_inference_duration_seconds", "");
        sb.Append("# HELP resnet_queue_depth Requests waiting for the model.\n# TYPE resnet_queue_depth gauge\n");
        sb.Append(CultureInfo.InvariantCulture, $"resnet_queue_depth {QueueDepth()}\n");
        return sb.ToString();
    }
}
