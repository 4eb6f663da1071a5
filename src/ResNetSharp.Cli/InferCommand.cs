using System.CommandLine;
using ResNetSharp.IO;
using ResNetSharp.Tensors;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet infer`: a float32 .npy batch (N, C, H, W) in, the model's logits (or pooled features) out as .npy, for ONNX
/// models, native safetensors and bare torchvision state dicts (with --arch). The input is used as it is: no
/// preprocessing is applied.
/// </summary>
internal static class InferCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model: .onnx, native .safetensors, or a torchvision state dict (.safetensors, with --arch)", Required = true };
        var input = new Option<string>("--input", "-i") { Description = "Input .npy: float32 (or float64) (N, C, H, W), C order", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Output .npy (float32), written atomically", Required = true };
        var arch = new Option<string?>("--arch", "-a") { Description = "Architecture of a bare torchvision state dict" };
        var preprocess = new Option<string?>("--preprocess") { Description = "ONNX preprocessing graph to run before an ONNX model (e.g. ResNetPreprocess.onnx)" };
        var features = new Option<bool>("--features") { Description = "Write the pooled features (N, F) instead of the logits (the default for a featurizer)" };
        var cmd = new Command("infer", "Run a model on a NumPy batch and write its output as NumPy") { model, input, output, arch, preprocess, features };
        cmd.SetAction(pr =>
        {
            string inPath = pr.GetValue(input)!, outPath = pr.GetValue(output)!;
            if (!File.Exists(inPath)) throw new CliException($"input file '{inPath}' does not exist", ExitCodes.Failure);
            var m = ModelLoading.Load(pr.GetValue(model)!, pr.GetValue(arch), pr.GetValue(preprocess));
            var x = Npy.Read(inPath);
            if (x.Rank == 3) x = x.Reshape(1, x.Dim(0), x.Dim(1), x.Dim(2));
            if (x.Rank != 4)
                throw new CliException($"{inPath}: shape {Tensor<float>.ShapeString(x.Shape)} is not a batch (N, C, H, W) or an image (C, H, W)", ExitCodes.Failure);
            if (x.Dim(0) == 0) throw new CliException($"{inPath}: the batch is empty", ExitCodes.Failure);
            bool wantFeatures = pr.GetValue(features) || !m.HasClassifier;
            Tensor<float> y;
            try { y = wantFeatures ? m.Features(x) : m.Logits(x); }
            catch (Exception e) when (e is ArgumentException or InvalidDataException)
            {
                throw new CliException($"{inPath}: input {Tensor<float>.ShapeString(x.Shape)} does not fit the model: {e.Message}", ExitCodes.Failure);
            }
            Npy.Write(outPath, y);
            Console.WriteLine($"{outPath}: {(wantFeatures ? "features" : "logits")} {Tensor<float>.ShapeString(y.Shape)} " +
                $"({m.Metadata.Architecture}, input {Tensor<float>.ShapeString(x.Shape)})");
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
