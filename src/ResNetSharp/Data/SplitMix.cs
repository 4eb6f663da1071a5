namespace ResNetSharp.Data;

/// <summary>
/// A small counter-based generator (SplitMix64). Every random choice of the data pipeline is drawn from one keyed
/// by (seed, epoch, sample), so results do not depend on thread scheduling, and a run resumed at an epoch boundary
/// draws exactly what the uninterrupted run drew: the seed and epoch are the whole RNG state.
/// </summary>
public struct SplitMix
{
    private ulong _state;

    public SplitMix(ulong seed) => _state = seed;

    /// <summary>A generator keyed by several values (seed, epoch, index …), well mixed.</summary>
    public static SplitMix For(long a, long b = 0, long c = 0)
    {
        ulong s = Mix((ulong)a ^ 0x9E3779B97F4A7C15UL);
        s = Mix(s ^ (ulong)b);
        s = Mix(s ^ (ulong)c);
        return new SplitMix(s);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n) => n <= 0 ? throw new ArgumentOutOfRangeException(nameof(n)) : (int)((NextUInt64() >> 33) * (ulong)n >> 31);

    /// <summary>Uniform integer in [lo, hi] inclusive.</summary>
    public int NextInt(int lo, int hi) => lo + NextInt(hi - lo + 1);

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A Fisher–Yates permutation of 0..n-1.</summary>
    public static int[] Permutation(int n, SplitMix rng)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
