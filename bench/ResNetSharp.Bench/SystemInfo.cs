using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ResNetSharp.Bench;

/// <summary>What the report says about the machine, the software and the source it measured.</summary>
internal static class SystemInfo
{
    /// <summary>/proc/self/status as name → kB (only the "kB" lines).</summary>
    public static Dictionary<string, long> ProcStatus()
    {
        var d = new Dictionary<string, long>();
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            var parts = line[(colon + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[1] == "kB" && long.TryParse(parts[0], out long v)) d[line[..colon]] = v;
        }
        return d;
    }

    /// <summary>
    /// CPU time of the whole machine (/proc/stat) and of this process with its reaped children (/proc/self/stat), in
    /// clock ticks. Between two snapshots, machine busy time minus our own is what other processes took.
    /// </summary>
    public readonly record struct CpuSnapshot(long Busy, long Total, long Own)
    {
        public static CpuSnapshot Take()
        {
            try
            {
                var cpu = File.ReadLines("/proc/stat").First(l => l.StartsWith("cpu ", StringComparison.Ordinal))
                    .Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
                // user nice system idle iowait irq softirq steal [guest guest_nice: already counted in user/nice]
                long idle = cpu[3] + (cpu.Length > 4 ? cpu[4] : 0);
                long total = cpu.Take(Math.Min(cpu.Length, 8)).Sum();
                string self = File.ReadAllText("/proc/self/stat");
                var f = self[(self.LastIndexOf(')') + 2)..].Split(' ');
                long own = long.Parse(f[11]) + long.Parse(f[12]) + long.Parse(f[13]) + long.Parse(f[14]);
                return new CpuSnapshot(total - idle, total, own);
            }
            catch (Exception e) when (e is IOException or FormatException or InvalidOperationException or IndexOutOfRangeException)
            {
                return default;
            }
        }

        /// <summary>The share of the machine's CPU capacity that other processes used since <paramref name="start"/> (0..1), or NaN.</summary>
        public double OthersSince(CpuSnapshot start)
        {
            long total = Total - start.Total;
            if (total <= 0 || start.Total == 0) return double.NaN;
            long others = (Busy - start.Busy) - (Own - start.Own);
            return Math.Clamp(others / (double)total, 0, 1);
        }
    }

    /// <summary>"model name" from /proc/cpuinfo, the logical CPU count and the memory, in one line.</summary>
    public static string Machine()
    {
        string model = "unknown CPU";
        try
        {
            model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))
                ?.Split(':', 2)[1].Trim() ?? model;
        }
        catch (IOException) { }
        string mem = "";
        try
        {
            var total = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            if (total is not null && long.TryParse(total.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out long kb))
                mem = $", {kb / 1024.0 / 1024.0:F1} GiB RAM";
        }
        catch (IOException) { }
        return $"{model}, {Environment.ProcessorCount} logical CPUs{mem}, {RuntimeInformation.OSDescription}";
    }

    public static string Isa()
    {
        var isa = new List<string>();
        if (Avx512F.IsSupported) isa.Add("AVX-512F");
        if (Avx2.IsSupported) isa.Add("AVX2");
        if (Fma.IsSupported) isa.Add("FMA");
        isa.Add($"Vector512 accelerated: {(Vector512.IsHardwareAccelerated ? "yes" : "no")}");
        return string.Join(", ", isa);
    }

    /// <summary>Runs a program and returns its trimmed stdout, or null when it cannot run or fails.</summary>
    public static string? Capture(string file, params string[] args) => CaptureRaw(file, args)?.Trim();

    /// <summary>As <see cref="Capture"/>, without trimming (git status --porcelain starts lines with a space).</summary>
    public static string? CaptureRaw(string file, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi);
            if (p is null) return null;
            string output = p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    /// <summary>The commit and whether the engine or the bench differ from it in the working tree.</summary>
    public static (string Commit, string State) Git(string repoRoot)
    {
        string commit = Capture("git", "-C", repoRoot, "rev-parse", "HEAD") ?? "unknown";
        string? dirty = CaptureRaw("git", "-C", repoRoot, "status", "--porcelain", "--untracked-files=no", "--", "src", "bench", "Directory.Build.props");
        dirty = dirty?.TrimEnd('\n');
        string state = dirty is null ? "working tree state unknown"
            : dirty.Length == 0 ? "src/ and bench/ as committed"
            : "with uncommitted changes in: " + string.Join(", ", dirty.Split('\n').Select(l => l.Length > 3 ? l[3..].Trim() : l).Take(8))
              + (dirty.Split('\n').Length > 8 ? ", ..." : "");
        return (commit, state);
    }

    /// <summary>The repository root: the first folder upwards (from the working directory, then the program) with ResNetSharp.slnx.</summary>
    public static string? RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "ResNetSharp.slnx"))) return d.FullName;
        }
        return null;
    }

    public static string DebianPackageVersion(string package) =>
        Capture("dpkg-query", "-W", "-f", "${Version}", package) ?? "not installed";
}
