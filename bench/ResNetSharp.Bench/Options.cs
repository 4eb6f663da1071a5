using System.Globalization;

namespace ResNetSharp.Bench;

/// <summary>The harness's command line. Hand-parsed: a few flags, no package needed.</summary>
internal sealed class Options
{
    public int Rounds { get; private set; } = 3;
    /// <summary>Iterations per engine per round for every row; null: each row's own default.</summary>
    public int? Iters { get; private set; }
    /// <summary>Warm-up iterations per engine for every row; null: each row's own default.</summary>
    public int? Warmup { get; private set; }
    /// <summary>A round of one engine stops after the iteration that passes this many seconds (at least 1 iteration).</summary>
    public double MaxRoundSeconds { get; private set; } = 20;
    public int Threads { get; private set; } = 2;
    public List<string> Only { get; } = [];
    public bool Json { get; private set; }
    public string? MarkdownPath { get; private set; }
    public string? JsonPath { get; private set; }
    public string ModelsDir { get; private set; } = "bench/.models";
    public string Python { get; private set; } = "/usr/bin/python3";
    public string? TorchScript { get; set; }
    public bool TorchInference { get; private set; } = true;
    public string? Command { get; private set; }
    public string? Note { get; private set; }
    /// <summary>Set by bench/run.sh when it built a clean checkout of a commit (BENCH_REV) instead of the working tree.</summary>
    public string? SourceCommit { get; private set; }
    public int RssIters { get; private set; } = 10;
    /// <summary>Before starting, wait up to this many seconds for other processes to leave the CPUs alone.</summary>
    public double WaitQuietSeconds { get; private set; }

    // Hidden child-process mode: --rss-probe ours|ort
    public string? RssProbe { get; private set; }
    public string RssModel { get; private set; } = "resnet50";

    /// <summary>--layers ROW: the per-layer profile of one inference row instead of the benchmark.</summary>
    public string? Layers { get; private set; }

    /// <summary>--ab Type.Member=A,B: one engine switch measured against itself instead of the benchmark (SwitchAb).</summary>
    public string? Ab { get; private set; }

    /// <summary>--ab-work ROW: the workload of --ab (default r20-train).</summary>
    public string AbWork { get; private set; } = "r20-train";

    /// <summary>--ab-layers: --ab also prints each layer's (or plan step's) median time under A and B.</summary>
    public bool AbLayers { get; private set; }

    /// <summary>Whether --rounds was given (--ab has a default of its own).</summary>
    public bool RoundsGiven { get; private set; }

    public bool Help { get; private set; }

    public static string Usage => """
        ResNetSharp.Bench: ResNetSharp against ONNX Runtime (inference) and PyTorch 1.13 (training), interleaved rounds.

        Usage: ResNetSharp.Bench [options]        (normally through bench/run.sh, which builds, exports models and passes these)

          --rounds R            interleaved rounds (ours, peer, ours, peer, ...); default 3
          --iters K             iterations per engine per round, for every row (default: each row's own, see below)
          --warmup W            untimed iterations per engine before the rounds (default: each row's own)
          --max-round-s S       stop an engine's round after the iteration that passes S seconds (at least one
                                iteration always runs); default 20. Keeps a slow engine from taking all the time.
          --only A,B,...        rows to run: r50-b1, r50-b16, r18-b1, r20-train, r18-train, rss (default: all)
          --threads T           threads for every engine (default 2)
          --wait-quiet S        first wait up to S seconds until other processes use under 10% of the CPUs
                                (the report shows, per row, how much CPU other processes took anyway)
          --models DIR          exported models (bench/peers/export_models.py); default bench/.models
          --python PATH         the interpreter with PyTorch; default /usr/bin/python3
          --torch-script PATH   bench/peers/torch_train.py (default: found from the repository root)
          --no-torch-inference  skip the informational PyTorch column of the inference rows
          --rss-iters N         inferences in each peak-memory probe process (default 10)
          --json                print the results as one JSON object on stdout (progress goes to stderr)
          --json-file FILE      also write that JSON to FILE
          --markdown FILE       write the report (command, date, machine, versions, table) to FILE, e.g. docs/performance.md
          --command TEXT        the command line to quote in the report (bench/run.sh passes its own)
          --note TEXT           a sentence to add to the report
          --source-commit SHA   the engine was built from a clean checkout of SHA (bench/run.sh sets it for BENCH_REV)
          --layers ROW          instead of the benchmark, where the time goes in one inference row (r50-b1, r50-b16,
                                r18-b1): ours per plan step and ONNX Runtime per graph node (its own profiler), medians
                                over the timed runs of interleaved rounds, printed on stdout; writes no report
          --ab Type.Member=A,B  instead of the benchmark, one engine switch against itself on one model: a static field
                                or property its kernels read on every call (e.g. NchwConv.UseWinograd=true,false;
                                not InferencePlan's, read once per plan). Rounds of A, B, A again in rotating order
                                (--rounds, default 30; --warmup, default 3); prints the median of B/A and, as the noise
                                floor, of A again/A. No report
          --ab-work ROW         the workload of --ab: r50-b1, r50-b16, r18-b1, r20-train (default) or r18-train, or one
                                kernel call, for effects below a model's noise: gemm:M,K,N[,res],
                                winograd-weights:C,T, nchw-conv:C,H,B or winograd:C,H,B,T (use --rounds 300 or so)
          --ab-layers           --ab also prints each layer's time (training) or plan step's (inference), medians
                                under A, B and A again
          -h, --help            this text
        """;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{a} needs a value");
            int NextInt(int min)
            {
                string v = Next();
                if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min)
                    throw new UsageException($"{a} needs an integer >= {min}, got '{v}'");
                return n;
            }
            switch (a)
            {
                case "--rounds": o.Rounds = NextInt(1); o.RoundsGiven = true; break;
                case "--iters": o.Iters = NextInt(1); break;
                case "--warmup": o.Warmup = NextInt(0); break;
                case "--max-round-s":
                    {
                        string v = Next();
                        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || !(s > 0))
                            throw new UsageException($"--max-round-s needs a positive number, got '{v}'");
                        o.MaxRoundSeconds = s;
                        break;
                    }
                case "--threads": o.Threads = NextInt(1); break;
                case "--wait-quiet": o.WaitQuietSeconds = NextInt(0); break;
                case "--only":
                    foreach (var name in Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        if (!Rows.Ids.Contains(name)) throw new UsageException($"--only: unknown row '{name}'; rows: {string.Join(", ", Rows.Ids)}");
                        o.Only.Add(name);
                    }
                    break;
                case "--models": o.ModelsDir = Next(); break;
                case "--python": o.Python = Next(); break;
                case "--torch-script": o.TorchScript = Next(); break;
                case "--no-torch-inference": o.TorchInference = false; break;
                case "--rss-iters": o.RssIters = NextInt(1); break;
                case "--json": o.Json = true; break;
                case "--json-file": o.JsonPath = Next(); break;
                case "--markdown": o.MarkdownPath = Next(); break;
                case "--command": o.Command = Next(); break;
                case "--note": o.Note = Next(); break;
                case "--source-commit": o.SourceCommit = Next(); break;
                case "--rss-probe":
                    o.RssProbe = Next();
                    if (o.RssProbe is not ("ours" or "ort")) throw new UsageException($"--rss-probe takes ours or ort, got '{o.RssProbe}'");
                    break;
                case "--rss-model": o.RssModel = Next(); break;
                case "--layers":
                    o.Layers = Next();
                    if (o.Layers is not ("r50-b1" or "r50-b16" or "r18-b1")) throw new UsageException($"--layers takes r50-b1, r50-b16 or r18-b1, got '{o.Layers}'");
                    break;
                case "--ab": o.Ab = Next(); break;
                case "--ab-layers": o.AbLayers = true; break;
                case "--ab-work":
                    o.AbWork = Next();
                    if (KernelWorkloads.IsKernel(o.AbWork)) KernelWorkloads.Parse(o.AbWork);   // checks the shape before any work
                    else if (!Rows.Ids.Contains(o.AbWork) || o.AbWork == "rss")
                        throw new UsageException($"--ab-work takes r50-b1, r50-b16, r18-b1, r20-train, r18-train or a kernel ({KernelWorkloads.Help}), got '{o.AbWork}'");
                    break;
                case "-h" or "--help": o.Help = true; break;
                default: throw new UsageException($"unknown option '{a}' (see --help)");
            }
        }
        return o;
    }
}

internal sealed class UsageException(string message) : Exception(message);
