using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using ResNetSharp.Imaging;
using ResNetSharp.Serve.Tests.Support;

namespace ResNetSharp.Serve.Tests;

/// <summary>predict, embed and similar through the real `resnet` command, checked against the library.</summary>
public sealed class CommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _model;
    private readonly string[] _images;

    public CommandTests()
    {
        _model = TestModels.SaveFashionModel(_dir.File("fashion.safetensors"));
        _images =
        [
            Images.Write(_dir.File("images", "a.png"), Images.Noise(28, 28, 1), 28, 28),
            Images.Write(_dir.File("images", "b.jpg"), Images.Noise(28, 28, 2), 28, 28),
            Images.Write(_dir.File("images", "sub", "c.webp"), Images.Noise(40, 30, 3), 40, 30),
            Images.Write(_dir.File("images", "sub", "d.png"), Images.Solid(28, 28, 120, 30, 200), 28, 28),
        ];
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Predict_top1_is_the_argmax_of_our_own_logits()
    {
        var r = ResnetCli.Run(["predict", "--model", _model, "-k", "3", "--json", .. _images]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var predictions = doc.RootElement.GetProperty("predictions").EnumerateArray().ToArray();
        Assert.Equal(_images.Length, predictions.Length);
        var model = TestModels.Load(_model);
        for (int i = 0; i < _images.Length; i++)
        {
            var logits = TestModels.Direct(model, _images[i]);
            var top = predictions[i].GetProperty("top").EnumerateArray().ToArray();
            Assert.Equal(_images[i], predictions[i].GetProperty("image").GetString());
            Assert.Equal(3, top.Length);
            int best = TestModels.ArgMax(logits);
            Assert.Equal(best, top[0].GetProperty("index").GetInt32());
            Assert.Equal(TestModels.Labels[best], top[0].GetProperty("label").GetString());
            var expected = Classification.TopK(logits, TestModels.Labels, 3);
            for (int j = 0; j < 3; j++)
                Assert.Equal(expected[j].Probability, top[j].GetProperty("probability").GetSingle(), 4);
        }
        Assert.Equal("metadata", doc.RootElement.GetProperty("labels").GetString());

        var text = ResnetCli.Run("predict", "--model", _model, _images[0]);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains(TestModels.Labels[TestModels.ArgMax(TestModels.Direct(model, _images[0]))], text.Stdout.Split('\n')[1]);
    }

    [Fact]
    public void Embed_then_similar_finds_each_image_itself_first()
    {
        string index = _dir.File("index.safetensors");
        var e = ResnetCli.Run("embed", "--model", _model, "--images", _dir.File("images"), "--out", index, "--batch", "3");
        Assert.True(e.ExitCode == 0, e.Stderr);
        // stdout is redirected here: plain progress lines, one per batch.
        Assert.Contains("embedded 3/4 images", e.Stdout);
        Assert.Contains("embedded 4/4 images", e.Stdout);

        var idx = EmbeddingIndex.Load(index);
        Assert.Equal(_images.Select(Path.GetFullPath).Order(StringComparer.Ordinal), idx.Paths);
        var model = TestModels.Load(_model);
        Assert.Equal(model.FeatureSize, idx.FeatureSize);
        for (int i = 0; i < idx.Count; i++)
        {
            var direct = TestModels.Direct(model, idx.Paths[i], features: true);
            Assert.True(Classification.Cosine(direct, idx.Row(i)) > 0.99999, idx.Paths[i]);
        }

        foreach (var image in _images)
        {
            var s = ResnetCli.Run("similar", "--index", index, image, "-k", "4", "--json");
            Assert.True(s.ExitCode == 0, s.Stderr);
            using var doc = JsonDocument.Parse(s.Stdout);
            var n = doc.RootElement.GetProperty("neighbours").EnumerateArray().ToArray();
            Assert.Equal(4, n.Length);
            Assert.Equal(Path.GetFullPath(image), n[0].GetProperty("path").GetString());
            Assert.Equal(1.0, n[0].GetProperty("cosine").GetDouble(), 5);
            Assert.True(n[1].GetProperty("cosine").GetDouble() < 0.99999);
            var cosines = n.Select(x => x.GetProperty("cosine").GetDouble()).ToArray();
            Assert.Equal(cosines.OrderDescending(), cosines);
        }
    }

    [Fact]
    public void Errors_are_one_line_naming_what_is_wrong()
    {
        string bad = _dir.File("bad.jpg");
        File.WriteAllBytes(bad, [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]);
        var r = ResnetCli.Run("predict", "--model", _model, _images[0], bad);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("resnet: error: " + bad, r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));

        var missing = ResnetCli.Run("predict", "--model", _dir.File("nope.safetensors"), _images[0]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("nope.safetensors", missing.Stderr);

        var size = ResnetCli.Run("predict", "--model", _model, "--size", "28by28", _images[0]);
        Assert.Equal(2, size.ExitCode);
        Assert.Contains("--size", size.Stderr);

        var notIndex = ResnetCli.Run("similar", "--index", _model, _images[0]);
        Assert.Equal(1, notIndex.ExitCode);
        Assert.Contains("not an embedding index", notIndex.Stderr);

        File.WriteAllBytes(_dir.File("images", "zz_broken.png"), [1, 2, 3]);
        var embed = ResnetCli.Run("embed", "--model", _model, "--images", _dir.File("images"), "--out", _dir.File("i.safetensors"));
        Assert.Equal(1, embed.ExitCode);
        Assert.Contains("zz_broken.png", embed.Stderr);
        Assert.False(File.Exists(_dir.File("i.safetensors")));
        var skipped = ResnetCli.Run("embed", "--model", _model, "--images", _dir.File("images"), "--out", _dir.File("i.safetensors"), "--skip-errors");
        Assert.Equal(0, skipped.ExitCode);
        Assert.Contains("zz_broken.png", skipped.Stderr);
        Assert.Equal(4, EmbeddingIndex.Load(_dir.File("i.safetensors")).Count);
    }

    [Fact]
    public async Task Serve_answers_on_the_port_it_prints_and_stops_on_sigterm()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "resnet.dll"), "serve", "--model", _model, "--port", "0", "--max-batch", "4" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        try
        {
            var first = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.NotNull(first);
            var url = Regex.Match(first!, @"on (http://127\.0\.0\.1:\d+/)").Groups[1].Value;
            Assert.True(url.Length > 0, $"no address in '{first}'");
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            Assert.Contains("\"resnet20\"", await http.GetStringAsync("healthz"));
            using var r = await http.PostAsync("v1/classify", new ByteArrayContent(File.ReadAllBytes(_images[0])));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            int best = TestModels.ArgMax(TestModels.Direct(TestModels.Load(_model), _images[0]));
            Assert.Equal(best, doc.RootElement.GetProperty("top")[0].GetProperty("index").GetInt32());

            // SIGTERM (what service managers send). Ctrl+C is SIGINT, which a process started in the background of a
            // non-interactive shell inherits as ignored, so the test cannot rely on it.
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString()])) await kill.WaitForExitAsync();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            Assert.Equal(0, p.ExitCode);
            Assert.Contains("stopped", await p.StandardOutput.ReadToEndAsync());
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public void Serve_refuses_bad_options_with_usage_errors()
    {
        var r = ResnetCli.Run("serve", "--model", _model, "--max-batch", "0");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("max batch", r.Stderr);
        var host = ResnetCli.Run("serve", "--model", _model, "--host", "not-an-address", "--port", "0");
        Assert.Equal(2, host.ExitCode);
        Assert.Contains("not-an-address", host.Stderr);
    }

    [Fact]
    public void Preprocessing_flags_override_the_metadata()
    {
        // --size 16x16 feeds a 16x16 crop: the logits must equal ours on the same preprocessing, not the metadata's.
        var r = ResnetCli.Run("predict", "--model", _model, "--size", "16x16", "--mean", "0.5", "--std", "0.5", "--json", "-k", "10", _images[2]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var model = TestModels.Load(_model);
        var pre = new ImagePreprocessor(Models.Preprocessing.FashionMnist with { Height = 16, Width = 16, Mean = [0.5f], Std = [0.5f] });
        var logits = model.Logits(pre.Batch([pre.Preprocess(ImageDecoder.DecodeFile(_images[2]))])).Span.ToArray();
        using var doc = JsonDocument.Parse(r.Stdout);
        var top = doc.RootElement.GetProperty("predictions")[0].GetProperty("top").EnumerateArray().ToArray();
        Assert.Equal("flag", doc.RootElement.GetProperty("preprocessing").GetString());
        foreach (var t in top) Assert.Equal(logits[t.GetProperty("index").GetInt32()], t.GetProperty("logit").GetSingle(), 4);
    }
}
