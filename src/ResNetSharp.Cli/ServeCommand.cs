using System.CommandLine;
using ResNetSharp.Serve;

namespace ResNetSharp.Cli;

/// <summary>`resnet serve --model M --port P`: the HTTP inference service (see <see cref="InferenceServer"/>) until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var d = new ServeOptions();
        var options = new InferenceOptions();
        var host = new Option<string>("--host") { Description = "Address to bind: an IP, 'localhost', or '*' for all interfaces", DefaultValueFactory = _ => d.Host };
        var port = new Option<int>("--port", "-p") { Description = "TCP port (0: any free port)", DefaultValueFactory = _ => d.Port };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most images per model call (1: no batching)", DefaultValueFactory = _ => d.MaxBatch };
        var maxWait = new Option<double>("--max-wait-ms") { Description = "How long a batch waits for more requests", DefaultValueFactory = _ => d.MaxWait.TotalMilliseconds };
        var maxBody = new Option<double>("--max-body-mb") { Description = "Largest request body in MiB (larger: 413)", DefaultValueFactory = _ => d.MaxBodyBytes / 1048576.0 };
        var maxPixels = new Option<long>("--max-pixels") { Description = "Largest image by header width x height (larger: 413)", DefaultValueFactory = _ => d.MaxPixels };
        var timeout = new Option<double>("--timeout-s") { Description = "How long a request may wait for the model (longer: 503)", DefaultValueFactory = _ => d.RequestTimeout.TotalSeconds };
        var queue = new Option<int>("--queue") { Description = "Requests waiting for the model at most (more: 503)", DefaultValueFactory = _ => d.QueueLength };
        var threads = new Option<int>("--threads") { Description = "Worker threads of the engine (default: the core count)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = options.AddTo(new Command("serve", "Serve a model over HTTP: /v1/classify, /v1/embed, /healthz, /metrics and an upload page at /"),
            host, port, maxBatch, maxWait, maxBody, maxPixels, timeout, queue, threads);
        // Async so that System.CommandLine hands us its Ctrl+C token (it takes SIGINT itself); SIGTERM stops the host.
        cmd.SetAction(async (pr, cancel) =>
        {
            int t = pr.GetValue(threads);
            if (t is <= 0 or > 1024) throw new CliException($"--threads must be between 1 and 1024, got {t}");
            double bodyMb = pr.GetValue(maxBody), waitMs = pr.GetValue(maxWait), timeoutS = pr.GetValue(timeout);
            if (!(bodyMb > 0) || bodyMb > 1024) throw new CliException($"--max-body-mb must be in (0, 1024], got {bodyMb}");
            if (!(waitMs >= 0)) throw new CliException($"--max-wait-ms must be 0 or more, got {waitMs}");
            if (!(timeoutS > 0) || timeoutS > 3600) throw new CliException($"--timeout-s must be in (0, 3600], got {timeoutS}");
            var serveOptions = new ServeOptions
            {
                Host = pr.GetValue(host)!, Port = pr.GetValue(port), MaxBatch = pr.GetValue(maxBatch), MaxWait = TimeSpan.FromMilliseconds(waitMs),
                MaxBodyBytes = (long)(bodyMb * 1048576), MaxPixels = pr.GetValue(maxPixels), RequestTimeout = TimeSpan.FromSeconds(timeoutS),
                QueueLength = pr.GetValue(queue),
            };
            try { serveOptions.Validate(); }
            catch (ArgumentException e) { throw new CliException(e.Message); }
            Engine.Threads = t;
            string modelPath = pr.GetValue(options.Model)!;
            var model = options.LoadModel(pr);
            var inputs = options.Resolve(pr, model, modelPath);
            InferenceServer server;
            try { server = await InferenceServer.StartAsync(model, inputs, serveOptions, cancel: cancel); }
            catch (IOException e) { throw new CliException($"cannot listen on {serveOptions.Host}:{serveOptions.Port}: {e.Message}", ExitCodes.Failure); }
            var p = inputs.Preprocessing;
            Console.WriteLine($"serving {model.Metadata.Architecture} from {modelPath} on {server.Address} " +
                $"(input {p.Channels}x{p.Height}x{p.Width}, max batch {serveOptions.MaxBatch}, max wait {waitMs:0.###} ms); Ctrl+C stops");
            try { await server.WaitForShutdownAsync(cancel); }
            catch (OperationCanceledException) { }
            await server.DisposeAsync();
            Console.WriteLine("stopped");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
