using System.Diagnostics;
using System.Net;
using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ResNetSharp.Imaging;
using ResNetSharp.Models;

namespace ResNetSharp.Serve;

/// <summary>
/// The HTTP inference service: an ASP.NET Core minimal API on Kestrel in front of an <see cref="InferenceBatcher"/>.
/// <list type="bullet">
/// <item>POST /v1/classify (raw image bytes or multipart with a file part; ?k= classes, default 5): top-k classes.</item>
/// <item>POST /v1/embed: the global-average-pooled feature vector.</item>
/// <item>GET /healthz, GET /metrics (Prometheus text), GET / (an upload page).</item>
/// </list>
/// Every error is JSON <c>{"error": "..."}</c>: 400 for a bad image or request, 413 for a body or image over the
/// limits, 503 when the queue is full or the model did not answer within the request timeout.
/// </summary>
public sealed class InferenceServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly InferenceBatcher _batcher;

    private InferenceServer(WebApplication app, InferenceBatcher batcher, ServerMetrics metrics, Uri address)
    {
        _app = app;
        _batcher = batcher;
        Metrics = metrics;
        Address = address;
    }

    /// <summary>The address the service listens on, with the real port when 0 was asked for.</summary>
    public Uri Address { get; }
    public ServerMetrics Metrics { get; }

    /// <summary>Starts the service. <paramref name="log"/> receives one line per unexpected server error (default: stderr).</summary>
    public static async Task<InferenceServer> StartAsync(IImageModel model, ModelInputs inputs, ServeOptions options, Action<string>? log = null, CancellationToken cancel = default)
    {
        options.Validate();
        log ??= Console.Error.WriteLine;
        var pre = new ImagePreprocessor(inputs.Preprocessing);
        if (pre.Channels != model.Metadata.InChannels)
            throw new ArgumentException($"preprocessing gives {pre.Channels} channel(s), the model takes {model.Metadata.InChannels}");
        var metrics = new ServerMetrics(options.MaxBatch);
        var batcher = new InferenceBatcher(model, pre.Channels, pre.Height, pre.Width, options, metrics);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = typeof(InferenceServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
            switch (options.Host)
            {
                case "localhost": k.ListenLocalhost(options.Port); break;
                case "*" or "0.0.0.0": k.ListenAnyIP(options.Port); break;
                default:
                    if (!IPAddress.TryParse(options.Host, out var ip)) throw new ArgumentException($"host '{options.Host}' is not an IP address, 'localhost' or '*'");
                    k.Listen(ip, options.Port);
                    break;
            }
        });
        builder.Services.Configure<FormOptions>(f => f.MultipartBodyLengthLimit = options.MaxBodyBytes);
        var app = builder.Build();
        var endpoints = new Endpoints(model, inputs, pre, options, batcher, metrics, log);
        app.Use(endpoints.Measure);
        app.MapGet("/", Endpoints.Page);
        app.MapGet("/healthz", endpoints.Health);
        app.MapGet("/metrics", () => Results.Text(metrics.ToPrometheusText(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapPost("/v1/classify", (Delegate)endpoints.Classify);
        app.MapPost("/v1/embed", (Delegate)endpoints.Embed);
        try
        {
            await app.StartAsync(cancel).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            await batcher.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        // Kestrel reports "http://[::]:port" for any-IP; a client reaches it at the loopback address.
        var uri = new Uri(address.Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1"));
        return new InferenceServer(app, batcher, metrics, uri);
    }

    /// <summary>Completes when the service stops (Ctrl+C, SIGTERM or <see cref="DisposeAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancel = default) => Microsoft.Extensions.Hosting.HostingAbstractionsHostExtensions.WaitForShutdownAsync(_app, cancel);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        await _batcher.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>An error answered as JSON with this status.</summary>
    private sealed class HttpError(int status, string message) : Exception(message)
    {
        public int Status { get; } = status;
    }

    private sealed class Endpoints(IImageModel model, ModelInputs inputs, ImagePreprocessor pre, ServeOptions options,
        InferenceBatcher batcher, ServerMetrics metrics, Action<string> log)
    {
        private static readonly Lazy<byte[]> PageBytes = new(() =>
        {
            using var s = typeof(InferenceServer).Assembly.GetManifestResourceStream("ResNetSharp.Serve.index.html")
                ?? throw new InvalidOperationException("the page resource is missing from ResNetSharp.Serve");
            using var m = new MemoryStream();
            s.CopyTo(m);
            return m.ToArray();
        });

        private static readonly HashSet<string> Known = ["/", "/healthz", "/metrics", "/v1/classify", "/v1/embed"];

        /// <summary>Counts and times every request; turns any error that escapes an endpoint into JSON.</summary>
        public async Task Measure(HttpContext ctx, RequestDelegate next)
        {
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                await next(ctx);
            }
            catch (HttpError e) { await Error(ctx, e.Status, e.Message); }
            catch (BadHttpRequestException e) { await Error(ctx, e.StatusCode, e.StatusCode == 413 ? $"request body over the limit of {options.MaxBodyBytes:N0} bytes" : e.Message); }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { ctx.Abort(); }
            catch (Exception e)
            {
                log($"resnet serve: {ctx.Request.Method} {ctx.Request.Path}: {e.GetType().Name}: {e.Message}");
                await Error(ctx, 500, "internal error: " + e.Message);
            }
            finally
            {
                string path = ctx.Request.Path.Value ?? "";
                metrics.RecordRequest(Known.Contains(path) ? path : "other", ctx.Response.StatusCode, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
        }

        private static async Task Error(HttpContext ctx, int status, string message)
        {
            if (ctx.Response.HasStarted) { ctx.Abort(); return; }
            ctx.Response.Clear();
            ctx.Response.StatusCode = status;
            if (status == 503) ctx.Response.Headers.RetryAfter = "1";
            // The body may be left unread (refused by its Content-Length, or cut off at the limit): say that this
            // connection closes, so that the client does not send its next request on it.
            if (status == 413) ctx.Response.Headers.Connection = "close";
            await ctx.Response.WriteAsJsonAsync(new { error = message, status });
        }

        public static IResult Page() => Results.Bytes(PageBytes.Value, "text/html; charset=utf-8");

        public IResult Health() => Results.Json(new
        {
            status = "ok",
            architecture = model.Metadata.Architecture,
            classes = model.HasClassifier ? model.Metadata.NumClasses : 0,
            feature_size = model.FeatureSize,
            input = new[] { pre.Channels, pre.Height, pre.Width },
            max_batch = options.MaxBatch,
            max_wait_ms = options.MaxWait.TotalMilliseconds,
        });

        public async Task<IResult> Classify(HttpContext ctx)
        {
            if (!model.HasClassifier) throw new HttpError(400, "this model has no classifier (a feature extractor); use /v1/embed");
            int k = options.DefaultTopK;
            if (ctx.Request.Query.TryGetValue("k", out var kText) && (!int.TryParse(kText, out k) || k < 1))
                throw new HttpError(400, $"k must be a positive integer, got '{kText}'");
            var (logits, w, h) = await Infer(ctx, InferenceKind.Logits);
            var top = Classification.TopK(logits, inputs.Labels, k);
            return Results.Json(new
            {
                architecture = model.Metadata.Architecture,
                image = new { width = w, height = h },
                top = top.Select(t => new { rank = t.Rank, index = t.Index, label = t.Label, probability = t.Probability, logit = t.Logit }),
            });
        }

        public async Task<IResult> Embed(HttpContext ctx)
        {
            var (features, w, h) = await Infer(ctx, InferenceKind.Features);
            return Results.Json(new { architecture = model.Metadata.Architecture, image = new { width = w, height = h }, dimension = features.Length, embedding = features });
        }

        private async Task<(float[] Output, int Width, int Height)> Infer(HttpContext ctx, InferenceKind kind)
        {
            var (bytes, name) = await ReadImage(ctx);
            DecodedImage image;
            try { image = ImageDecoder.Decode(bytes, name, options.MaxPixels); }
            catch (ImageTooLargeException e) { throw new HttpError(413, e.Message); }
            catch (ImageDecodeException e) { throw new HttpError(400, e.Message); }
            var input = pre.Preprocess(image);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
            timeout.CancelAfter(options.RequestTimeout);
            try
            {
                return (await batcher.RunAsync(kind, input, timeout.Token), image.Width, image.Height);
            }
            catch (QueueFullException e) { throw new HttpError(503, e.Message); }
            catch (OperationCanceledException) when (!ctx.RequestAborted.IsCancellationRequested)
            {
                throw new HttpError(503, $"no answer from the model within the request timeout of {options.RequestTimeout.TotalSeconds:0.###} s");
            }
        }

        /// <summary>The image bytes: the first file part of a multipart body, or the raw body.</summary>
        private async Task<(byte[] Bytes, string Name)> ReadImage(HttpContext ctx)
        {
            var req = ctx.Request;
            if (req.ContentLength > options.MaxBodyBytes)
                throw new HttpError(413, $"request body of {req.ContentLength:N0} bytes is over the limit of {options.MaxBodyBytes:N0}");
            // Only multipart is a form here: curl --data-binary labels raw bytes application/x-www-form-urlencoded.
            if (req.ContentType is { } type && type.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            {
                IFormCollection form;
                try { form = await req.ReadFormAsync(ctx.RequestAborted); }
                catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
                {
                    throw new HttpError(413, $"multipart body over the limit of {options.MaxBodyBytes:N0} bytes");
                }
                catch (InvalidDataException e) { throw new HttpError(400, "malformed form body: " + e.Message); }
                var file = form.Files.FirstOrDefault() ?? throw new HttpError(400, "the form has no file part; send the image as a file field or as the raw body");
                using var m = new MemoryStream((int)Math.Min(file.Length, options.MaxBodyBytes));
                await file.CopyToAsync(m, ctx.RequestAborted);
                return (m.ToArray(), $"upload '{file.FileName}'");
            }
            using var body = new MemoryStream();
            await req.Body.CopyToAsync(body, ctx.RequestAborted);
            if (body.Length > options.MaxBodyBytes) throw new HttpError(413, $"request body over the limit of {options.MaxBodyBytes:N0} bytes");
            if (body.Length == 0) throw new HttpError(400, "empty request body; send the image bytes (or a multipart form with a file)");
            return (body.ToArray(), "request body");
        }
    }
}
