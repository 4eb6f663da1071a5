using System.Diagnostics;

namespace ResNetSharp.NN;

/// <summary>
/// Time per layer of the layer-by-layer path (training), summed over the calls made while it is
/// <see cref="Current"/>. Blocks are timed as a whole; multiply-adds are counted for forward passes.
/// </summary>
public sealed class LayerProfile
{
    private readonly Dictionary<(string Layer, string Pass), (double Ms, long Macs, int Calls)> _entries = [];
    private readonly List<(string, string)> _order = [];

    /// <summary>The profile that Sequential modules record into; null (the default) records nothing.</summary>
    public static LayerProfile? Current { get; set; }

    public void Add(string layer, string pass, long macs, long startTimestamp)
    {
        double ms = Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds;
        var key = (layer, pass);
        if (!_entries.TryGetValue(key, out var e)) _order.Add(key);
        _entries[key] = (e.Ms + ms, e.Macs + macs, e.Calls + 1);
    }

    public IEnumerable<(string Layer, string Pass, double Milliseconds, long Macs, int Calls)> Entries =>
        _order.Select(k => (k.Item1, k.Item2, _entries[k].Ms, _entries[k].Macs, _entries[k].Calls));
}
