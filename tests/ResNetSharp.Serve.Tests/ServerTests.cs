using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using ResNetSharp.Imaging;
using ResNetSharp.Models;
using ResNetSharp.Serve.Tests.Support;
using ResNetSharp.Tensors;
using SkiaSharp;

namespace ResNetSharp.Serve.Tests;

/// <summary>
/// A model whose calls wait at a gate the test opens, so that queueing, batching and timeouts can be produced on
/// purpose instead of by timing luck.
/// </summary>
public sealed class GatedModel(IImageModel inner) : IImageModel
{
    private readonly ManualResetEventSlim _gate = new(false);
    private int _calls, _firstBatch;

    public ModelMetadata Metadata => inner.Metadata;
    public bool HasClassifier => inner.HasClassifier;
    public int FeatureSize => inner.FeatureSize;
    /// <summary>Model calls started so far.</summary>
    public int Calls => Volatile.Read(ref _calls);
    /// <summary>Images in the first call (0 before it).</summary>
    public int FirstBatch => Volatile.Read(ref _firstBatch);
    public void Open() => _gate.Set();

    public Tensor<float> Logits(Tensor<float> batch) { Enter(batch); return inner.Logits(batch); }
    public Tensor<float> Features(Tensor<float> batch) { Enter(batch); return inner.Features(batch); }

    private void Enter(Tensor<float> batch)
    {
        Interlocked.CompareExchange(ref _firstBatch, batch.N, 0);
        Interlocked.Increment(ref _calls);
        _gate.Wait();
    }
}

public sealed class ServerTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private string _modelPath = "";
    private InferenceServer? _server;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMinutes(2) };

    public async Task InitializeAsync()
    {
        _modelPath = TestModels.SaveFashionModel(_dir.File("fashion.safetensors"));
        _server = await Start(TestModels.Load(_modelPath), new ServeOptions { Port = 0, MaxBatch = 8, MaxWait = TimeSpan.FromMilliseconds(2), MaxBodyBytes = 256 * 1024, MaxPixels = 1_000_000 });
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _http.Dispose();
        _dir.Dispose();
    }

    private static Task<InferenceServer> Start(IImageModel model, ServeOptions options) =>
        InferenceServer.StartAsync(model, ModelInputs.Resolve(model, "test model"), options with { Port = 0 }, log: _ => { });

    private static byte[] Png(int seed, int w = 28, int h = 28) => Images.Encode(Images.Noise(w, h, seed), w, h, SKEncodedImageFormat.Png);

    private static async Task<(HttpStatusCode Status, JsonElement Body)> Post(HttpClient http, Uri url, HttpContent content)
    {
        using var r = await http.PostAsync(url, content);
        string text = await r.Content.ReadAsStringAsync();
        Assert.StartsWith("application/json", r.Content.Headers.ContentType?.ToString());
        return (r.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    private Uri Url(string path, InferenceServer? server = null) => new((server ?? _server)!.Address, path);

    /// <summary>The top-k of a classify answer matches the library's own result on the same bytes.</summary>
    private static void AssertMatchesLibrary(JsonElement body, IImageModel direct, byte[] image, int k)
    {
        var expected = Classification.TopK(TestModels.Direct(direct, image), TestModels.Labels, k);
        var top = body.GetProperty("top").EnumerateArray().ToArray();
        Assert.Equal(k, top.Length);
        for (int i = 0; i < k; i++)
        {
            Assert.Equal(expected[i].Index, top[i].GetProperty("index").GetInt32());
            Assert.Equal(expected[i].Label, top[i].GetProperty("label").GetString());
            Assert.Equal(expected[i].Probability, top[i].GetProperty("probability").GetSingle(), 4);
        }
    }

    [Fact]
    public async Task Classify_raw_and_multipart_equal_the_library()
    {
        var direct = TestModels.Load(_modelPath);
        var image = Png(1);
        var (s1, raw) = await Post(_http, Url("/v1/classify"), new ByteArrayContent(image));
        Assert.Equal(HttpStatusCode.OK, s1);
        AssertMatchesLibrary(raw, direct, image, 5);
        // Raw bytes whatever their content type says (curl --data-binary sends application/x-www-form-urlencoded).
        var urlencoded = new ByteArrayContent(image);
        urlencoded.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
        var (s0, labelled) = await Post(_http, Url("/v1/classify"), urlencoded);
        Assert.Equal(HttpStatusCode.OK, s0);
        AssertMatchesLibrary(labelled, direct, image, 5);
        Assert.Equal(28, raw.GetProperty("image").GetProperty("width").GetInt32());

        using var form = new MultipartFormDataContent();
        var part = new ByteArrayContent(image);
        part.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        form.Add(part, "file", "one.png");
        var (s2, multi) = await Post(_http, Url("/v1/classify?k=10"), form);
        Assert.Equal(HttpStatusCode.OK, s2);
        AssertMatchesLibrary(multi, direct, image, 10);
    }

    [Fact]
    public async Task Embed_equals_the_library_features()
    {
        var direct = TestModels.Load(_modelPath);
        var image = Images.Encode(Images.Noise(50, 40, 9), 50, 40, SKEncodedImageFormat.Jpeg, 95);
        var (status, body) = await Post(_http, Url("/v1/embed"), new ByteArrayContent(image));
        Assert.Equal(HttpStatusCode.OK, status);
        var got = body.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var expected = TestModels.Direct(direct, image, features: true);
        Assert.Equal(direct.FeatureSize, body.GetProperty("dimension").GetInt32());
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-4f * (1 + Math.Abs(expected[i])), $"feature {i}: {got[i]} vs {expected[i]}");
    }

    [Fact]
    public async Task Health_page_and_metrics()
    {
        using var health = JsonDocument.Parse(await _http.GetStringAsync(Url("/healthz")));
        Assert.Equal("ok", health.RootElement.GetProperty("status").GetString());
        Assert.Equal("resnet20", health.RootElement.GetProperty("architecture").GetString());
        Assert.Equal([1, 28, 28], health.RootElement.GetProperty("input").EnumerateArray().Select(e => e.GetInt32()));

        using var page = await _http.GetAsync(Url("/"));
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("v1/classify", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org", ""));
        Assert.DoesNotContain("https://", html);

        await _http.PostAsync(Url("/v1/classify"), new ByteArrayContent(Png(2)));
        string metrics = await _http.GetStringAsync(Url("/metrics"));
        Assert.Contains("# TYPE resnet_requests_total counter", metrics);
        Assert.Matches(new Regex(@"^resnet_requests_total\{endpoint=""/v1/classify"",code=""200""\} [1-9]", RegexOptions.Multiline), metrics);
        Assert.Matches(new Regex(@"^resnet_request_duration_seconds_bucket\{endpoint=""/v1/classify"",le=""\+Inf""\} [1-9]", RegexOptions.Multiline), metrics);
        Assert.Matches(new Regex(@"^resnet_batch_size_count [1-9]", RegexOptions.Multiline), metrics);
        Assert.Contains("resnet_queue_depth 0", metrics);
    }

    [Fact]
    public async Task Bad_requests_get_json_errors_and_the_server_keeps_serving()
    {
        var direct = TestModels.Load(_modelPath);
        var noise = new byte[5000];
        new Random(3).NextBytes(noise);
        var jpeg = Images.Encode(Images.Noise(64, 64, 4), 64, 64, SKEncodedImageFormat.Jpeg, 90);
        var cases = new (string Name, string Path, Func<HttpContent> Body, HttpStatusCode Status, string Message)[]
        {
            ("random bytes", "/v1/classify", () => new ByteArrayContent(noise), HttpStatusCode.BadRequest, "not an image"),
            ("empty body", "/v1/classify", () => new ByteArrayContent([]), HttpStatusCode.BadRequest, "empty"),
            ("truncated jpeg", "/v1/embed", () => new ByteArrayContent(jpeg[..(jpeg.Length / 2)]), HttpStatusCode.BadRequest, "truncated"),
            ("bad k", "/v1/classify?k=zero", () => new ByteArrayContent(Png(1)), HttpStatusCode.BadRequest, "k must be"),
            ("form without file", "/v1/classify", () => new MultipartFormDataContent { { new StringContent("b"), "a" } }, HttpStatusCode.BadRequest, "no file part"),
            ("decompression bomb", "/v1/classify", () => new ByteArrayContent(Images.PngHeaderOnly(50_000, 50_000)), HttpStatusCode.RequestEntityTooLarge, "50000x50000"),
            ("over the pixel limit", "/v1/embed", () => new ByteArrayContent(Images.Encode(Images.Solid(1001, 1000, 1, 2, 3), 1001, 1000, SKEncodedImageFormat.Png)), HttpStatusCode.RequestEntityTooLarge, "over the limit"),
            ("body too large", "/v1/classify", () => new ByteArrayContent(new byte[300 * 1024]), HttpStatusCode.RequestEntityTooLarge, "over the limit"),
        };
        foreach (var c in cases)
        {
            var (status, body) = await Post(_http, Url(c.Path), c.Body());
            Assert.True(c.Status == status, $"{c.Name}: {status}, expected {c.Status}");
            Assert.Contains(c.Message, body.GetProperty("error").GetString());
            var image = Png(c.Name.Length);
            HttpStatusCode ok;
            JsonElement good;
            try { (ok, good) = await Post(_http, Url("/v1/classify"), new ByteArrayContent(image)); }
            catch (HttpRequestException e) { throw new InvalidOperationException($"the request after '{c.Name}' failed", e); }
            Assert.True(ok == HttpStatusCode.OK, $"after {c.Name}: {ok}");
            AssertMatchesLibrary(good, direct, image, 5);
        }
        string metrics = await _http.GetStringAsync(Url("/metrics"));
        Assert.Matches(new Regex(@"^resnet_requests_total\{endpoint=""/v1/classify"",code=""413""\} [1-9]", RegexOptions.Multiline), metrics);
        Assert.Matches(new Regex(@"^resnet_requests_total\{endpoint=""/v1/classify"",code=""400""\} [1-9]", RegexOptions.Multiline), metrics);
    }

    [Fact]
    public async Task Chunked_body_over_the_limit_is_413()
    {
        // No Content-Length: Kestrel's body limit trips while reading.
        var content = new StreamContent(new MemoryStream(new byte[600 * 1024]));
        using var req = new HttpRequestMessage(HttpMethod.Post, Url("/v1/classify")) { Content = content };
        req.Headers.TransferEncodingChunked = true;
        using var r = await _http.SendAsync(req);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
        Assert.Contains("over the limit", await r.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await Post(_http, Url("/v1/classify"), new ByteArrayContent(Png(5)))).Status);
    }

    [Fact]
    public async Task Concurrent_requests_form_batches_and_get_their_own_answers()
    {
        const int n = 12;
        var gated = new GatedModel(TestModels.Load(_modelPath));
        await using var server = await Start(gated, new ServeOptions { MaxBatch = 8, MaxWait = TimeSpan.FromMilliseconds(1), QueueLength = 64 });
        var images = Enumerable.Range(100, n).Select(s => Png(s)).ToArray();
        (HttpStatusCode Status, JsonElement Body)[] results;
        try
        {
            var tasks = images.Select(img => Post(_http, Url("/v1/classify?k=3", server), new ByteArrayContent(img))).ToArray();
            // The first batch is held at the gate; the rest of the requests queue up behind it.
            await WaitUntil(() => gated.Calls >= 1 && server.Metrics.QueueDepth() + gated.FirstBatch == n, "requests to queue");
            gated.Open();
            results = await Task.WhenAll(tasks);
        }
        finally { gated.Open(); }
        var direct = TestModels.Load(_modelPath);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(HttpStatusCode.OK, results[i].Status);
            AssertMatchesLibrary(results[i].Body, direct, images[i], 3);
        }
        var (cum, sum, count) = server.Metrics.BatchSize.Snapshot();
        Assert.Equal(n, (int)sum);
        Assert.True(count < n, $"{count} model calls for {n} requests: no batch formed");
        Assert.True(cum[0] < count, "every batch had one image");
        string metrics = await _http.GetStringAsync(Url("/metrics", server));
        Assert.Contains($"resnet_batch_size_sum {n}", metrics);
        Assert.Matches(new Regex(@"^resnet_batch_size_bucket\{le=""8""\} " + count, RegexOptions.Multiline), metrics);
    }

    [Fact]
    public async Task A_full_queue_and_a_timeout_get_503_then_the_server_recovers()
    {
        var gated = new GatedModel(TestModels.Load(_modelPath));
        await using var server = await Start(gated, new ServeOptions { MaxBatch = 1, MaxWait = TimeSpan.Zero, QueueLength = 2, RequestTimeout = TimeSpan.FromSeconds(60) });
        using var opener = new Opener(gated);
        var first = Post(_http, Url("/v1/classify", server), new ByteArrayContent(Png(1)));
        await WaitUntil(() => gated.Calls == 1, "the first request to reach the model");
        var queued = new[] { Post(_http, Url("/v1/classify", server), new ByteArrayContent(Png(2))), Post(_http, Url("/v1/classify", server), new ByteArrayContent(Png(3))) };
        await WaitUntil(() => server.Metrics.QueueDepth() == 2, "two requests to queue");
        var (status, body) = await Post(_http, Url("/v1/classify", server), new ByteArrayContent(Png(4)));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("queue is full", body.GetProperty("error").GetString());
        gated.Open();
        Assert.Equal(HttpStatusCode.OK, (await first).Status);
        foreach (var q in queued) Assert.Equal(HttpStatusCode.OK, (await q).Status);

        // The first request times out at the closed gate; the one after it must be answered within the same timeout,
        // so the model is warmed up first (its first call compiles the inference plan) and the timeout leaves room
        // for a loaded machine.
        var warm = TestModels.Load(_modelPath);
        TestModels.Direct(warm, Png(0));
        var slow = new GatedModel(warm);
        await using var server2 = await Start(slow, new ServeOptions { MaxBatch = 4, RequestTimeout = TimeSpan.FromSeconds(2) });
        using var opener2 = new Opener(slow);
        var (s2, b2) = await Post(_http, Url("/v1/classify", server2), new ByteArrayContent(Png(5)));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, s2);
        Assert.Contains("timeout", b2.GetProperty("error").GetString());
        slow.Open();
        var (s3, b3) = await Post(_http, Url("/v1/classify", server2), new ByteArrayContent(Png(6)));
        Assert.Equal(HttpStatusCode.OK, s3);
        AssertMatchesLibrary(b3, TestModels.Load(_modelPath), Png(6), 5);
    }

    /// <summary>Opens the gate when the test leaves, pass or fail, so that the server can shut down.</summary>
    private sealed class Opener(GatedModel m) : IDisposable
    {
        public void Dispose() => m.Open();
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited 60 s for {what}");
            await Task.Delay(5);
        }
    }
}
