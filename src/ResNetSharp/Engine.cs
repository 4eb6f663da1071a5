namespace ResNetSharp;

/// <summary>Process-wide engine settings.</summary>
public static class Engine
{
    private static int _threads = Environment.ProcessorCount;

    /// <summary>Worker threads the kernels use (default: the core count). 1 runs everything on the calling thread.</summary>
    public static int Threads
    {
        get => _threads;
        set
        {
            if (value < 1 || value > 1024) throw new ArgumentOutOfRangeException(nameof(value), value, "thread count must be between 1 and 1024");
            _threads = value;
        }
    }
}
