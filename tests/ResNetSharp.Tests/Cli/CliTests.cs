using System.Text.Json;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Cli;

public class CliTests
{
    /// <summary>
    /// The tool compiles methods with loops fully optimized at once and runs without dynamic PGO (README, "Hosting
    /// the engine"): with .NET's defaults the per-step loops of training sat in tier-0 or instrumented code.
    /// </summary>
    [Fact]
    public void ToolRunsWithTheEnginesJitSettings()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "resnet.runtimeconfig.json");
        Assert.True(File.Exists(path), $"{path} is missing");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var properties = doc.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.False(properties.GetProperty("System.Runtime.TieredPGO").GetBoolean());
        Assert.False(properties.GetProperty("System.Runtime.TieredCompilation.QuickJitForLoops").GetBoolean());
    }

    [Fact]
    public void SummaryJsonHasTorchvisionCounts()
    {
        var r = Support.Cli.Run("summary", "--arch", "resnet50", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(25_557_032, doc.RootElement.GetProperty("params").GetInt64());
        Assert.InRange(doc.RootElement.GetProperty("macs").GetInt64() / 1e9, 4.089 * 0.99, 4.089 * 1.01);
        Assert.Contains(doc.RootElement.GetProperty("layers").EnumerateArray(), l => l.GetProperty("name").GetString() == "layer4.2.conv3");
    }

    [Fact]
    public void SummaryTableShowsLayersShapesAndTotals()
    {
        var r = Support.Cli.Run("summary", "--arch", "resnet20", "--input", "1x28x28");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("layer3.2.conv2 (Conv2d)", r.Stdout);
        Assert.Contains("(N, 64, 7, 7)", r.Stdout);
        Assert.Contains("Total params: 269,434", r.Stdout);  // one input channel: 144 conv1 weights fewer
        Assert.Contains("Multiply-adds per image:", r.Stdout);
    }

    [Fact]
    public void ClassesAndSmallStemOptionsApply()
    {
        var r = Support.Cli.Run("summary", "--arch", "resnet18", "--input", "3x32x32", "--classes", "10", "--small-input-stem", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(11_173_962, doc.RootElement.GetProperty("params").GetInt64());  // torchvision resnet18(num_classes=10) with a 3x3 stem
        Assert.Equal(10, doc.RootElement.GetProperty("output")[0].GetInt32());
    }

    [Fact]
    public void ForwardRunsAndReportsTheOutputShape()
    {
        var r = Support.Cli.Run("forward", "--arch", "resnet20", "--input", "1x28x28", "--batch", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(new[] { 3, 10 }, doc.RootElement.GetProperty("output").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(5, doc.RootElement.GetProperty("top5").GetArrayLength());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BenchReportsMedianAndImagesPerSecond(bool train)
    {
        var args = new List<string> { "bench", "--arch", "resnet20", "--input", "1x16x16", "--batch", "4", "-n", "2", "--warmup", "1", "--threads", "2", "--profile", "--json" };
        if (train) args.Add("--train");
        var r = Support.Cli.Run(args.ToArray());
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("median_ms").GetDouble() > 0);
        Assert.Equal(4 * 1000 / root.GetProperty("median_ms").GetDouble(), root.GetProperty("img_per_s").GetDouble(), 1e-6);
        Assert.Equal(train ? "train" : "infer", root.GetProperty("mode").GetString());
        var layers = root.GetProperty("profile").EnumerateArray().Select(e => e.GetProperty("layer").GetString()).ToList();
        Assert.Contains(layers, l => l!.StartsWith("layer3.2"));
    }

    [Fact]
    public void DemoTrainsEvaluatesAndClassifies()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"resnetsharp-demo-{Guid.NewGuid():N}");
        try
        {
            var r = Support.Cli.Run("demo", "--epochs", "1", "--train-images", "256", "--out", dir);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("training resnet20", r.Stdout);
            Assert.Contains("confusion matrix", r.Stdout);
            Assert.Contains("true label", r.Stdout);
            Assert.Equal(8, r.Stdout.Split('\n').Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+\d+\s{3}\S.*%")));
            foreach (var f in new[] { "model.safetensors", "best.safetensors", "checkpoint.safetensors", "metrics.csv", "metrics.jsonl", "curves.png" })
                Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing from the demo's run folder");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("unknown architecture 'resnet19'; valid: resnet18", "summary", "--arch", "resnet19")]
    [InlineData("--input '3x224' is not a shape", "summary", "--arch", "resnet18", "--input", "3x224")]
    [InlineData("--input '0x8x8' is not a shape", "forward", "--arch", "resnet18", "--input", "0x8x8")]
    [InlineData("Option '--arch' is required", "summary")]
    [InlineData("Unrecognized command or argument '--frobnicate'", "summary", "--arch", "resnet18", "--frobnicate")]
    [InlineData("--batch must be between 1 and 4096", "forward", "--arch", "resnet20", "--batch", "0")]
    [InlineData("--classes must be positive", "summary", "--arch", "resnet20", "--classes", "-3")]
    [InlineData("--threads must be between 1 and 1024", "bench", "--arch", "resnet20", "--threads", "0")]
    [InlineData("GiB of activations for resnet50; the limit is 8 GiB", "forward", "--arch", "resnet50", "--input", "3x4096x4096", "--batch", "4")]
    [InlineData("not a shape", "forward", "--arch", "resnet50", "--input", "3x99999x99999")]
    [InlineData("Cannot parse argument 'many'", "forward", "--arch", "resnet20", "--batch", "many")]
    public void BadOptionsGetOneClearLineAndNonZeroExit(string expected, params string[] args)
    {
        var r = Support.Cli.Run(args);
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got:\n{r.Stderr}");
        Assert.StartsWith("resnet: error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
        Assert.Equal("", r.Stdout);
    }
}
