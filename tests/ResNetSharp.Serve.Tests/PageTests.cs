using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;
using ResNetSharp.Imaging;
using ResNetSharp.Serve.Tests.Support;
using SkiaSharp;

namespace ResNetSharp.Serve.Tests;

/// <summary>The upload page in headless Debian chromium (nothing downloaded): a person's view of /.</summary>
public sealed class PageTests : IAsyncLifetime
{
    private const string Chromium = "/usr/bin/chromium";
    private readonly TempDir _dir = new();
    private InferenceServer? _server;
    private string _modelPath = "";

    public async Task InitializeAsync()
    {
        // Expect() retries until its timeout (5 s by default): leave room for a loaded 2-core machine.
        Assertions.SetDefaultExpectTimeout(30_000);
        _modelPath = TestModels.SaveFashionModel(_dir.File("fashion.safetensors"), seed: 3);
        var model = TestModels.Load(_modelPath);
        _server = await InferenceServer.StartAsync(model, ModelInputs.Resolve(model, "test"), new ServeOptions { Port = 0, MaxPixels = 1_000_000 }, log: _ => { });
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _dir.Dispose();
    }

    private static async Task<IBrowser> Launch(IPlaywright pw)
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install -y chromium (.ci/run installs it)");
        return await pw.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    [Fact]
    public async Task Uploading_an_image_shows_the_top5_as_bars_matching_the_api()
    {
        string image = Images.Write(_dir.File("shirt.png"), Images.Noise(28, 28, 42), 28, 28);
        using var http = new HttpClient();
        using var api = JsonDocument.Parse(await (await http.PostAsync(new Uri(_server!.Address, "/v1/classify?k=5"), new ByteArrayContent(File.ReadAllBytes(image)))).Content.ReadAsStringAsync());
        var expected = api.RootElement.GetProperty("top").EnumerateArray().Select(t => (Label: t.GetProperty("label").GetString()!, P: t.GetProperty("probability").GetDouble())).ToArray();

        using var pw = await Playwright.CreateAsync();
        await using var browser = await Launch(pw);
        var page = await browser.NewPageAsync();
        var failed = new List<string>();
        page.RequestFailed += (_, r) => failed.Add(r.Url);
        await page.GotoAsync(_server.Address.ToString());
        await Assertions.Expect(page.Locator("#model")).ToContainTextAsync("resnet20");
        await page.Locator("#file").SetInputFilesAsync(image);
        var rows = page.Locator("#results .row");
        await Assertions.Expect(rows).ToHaveCountAsync(5);

        var labels = await page.Locator("#results .label").AllTextContentsAsync();
        Assert.Equal(expected.Select(e => e.Label), labels);
        var widths = await page.Locator("#results .bar").EvaluateAllAsync<string[]>("bars => bars.map(b => b.style.width)");
        for (int i = 0; i < 5; i++)
            Assert.Equal(100 * expected[i].P, double.Parse(widths[i].TrimEnd('%'), CultureInfo.InvariantCulture), 0.1);
        Assert.Equal("", await page.Locator("#error").TextContentAsync());
        Assert.Contains("28x28", await page.Locator("#status").TextContentAsync());
        Assert.Empty(failed);
    }

    [Fact]
    public async Task A_bad_file_shows_the_server_error_and_a_good_one_still_works()
    {
        string bad = _dir.File("bad.jpg");
        File.WriteAllBytes(bad, [0xFF, 0xD8, 0xFF, 1, 2, 3, 4]);
        string good = Images.Write(_dir.File("good.webp"), Images.Noise(60, 40, 7), 60, 40, SKEncodedImageFormat.Webp);
        using var pw = await Playwright.CreateAsync();
        await using var browser = await Launch(pw);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(_server!.Address.ToString());
        await page.Locator("#file").SetInputFilesAsync(bad);
        await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("not an image");
        await Assertions.Expect(page.Locator("#results .row")).ToHaveCountAsync(0);
        await page.Locator("#file").SetInputFilesAsync(good);
        await Assertions.Expect(page.Locator("#results .row")).ToHaveCountAsync(5);
        Assert.Equal("", await page.Locator("#error").TextContentAsync());
    }
}
