using System.Reflection;

namespace ResNetSharp.Onnx.Tests.Support;

public static class Paths
{
    public static string Golden(string name) => Path.Combine(AppContext.BaseDirectory, "golden", "onnx", name);

    /// <summary>Folder of the restored Microsoft.ML.DnnImageFeaturizer.ResNet18 package's models (ResNet18Onnx/, ResNetPrepOnnx/).</summary>
    public static string FeaturizerDir => typeof(Paths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .First(a => a.Key == "FeaturizerDir").Value!;

    /// <summary>A fresh temporary directory, deleted when disposed.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() { Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "resnetsharp-onnx-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(Path); }
        public string Path { get; }
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
    }
}
