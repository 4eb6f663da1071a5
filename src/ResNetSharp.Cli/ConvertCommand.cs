using System.CommandLine;
using ResNetSharp.IO;
using ResNetSharp.Models;
using ResNetSharp.Onnx;

namespace ResNetSharp.Cli;

/// <summary>
/// `resnet convert`: between the native format (safetensors with ResNetSharp metadata), ONNX, and bare torchvision
/// state dicts (safetensors without metadata, with --arch). The output's format follows its extension.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Input model: .safetensors (native or a torchvision state dict) or .onnx exported by ResNetSharp", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output file: .safetensors (native, with metadata) or .onnx", Required = true };
        var arch = new Option<string?>("--arch", "-a") { Description = "Architecture of a bare torchvision state dict: " + string.Join(", ", ResNets.Architectures) };
        var opset = new Option<int>("--opset") { Description = "ONNX opset of an .onnx output (7 to 21)", DefaultValueFactory = _ => 13 };
        var cmd = new Command("convert", "Convert a model between native safetensors, ONNX and torchvision state dicts") { model, output, arch, opset };
        cmd.SetAction(pr =>
        {
            string input = pr.GetValue(model)!, outPath = pr.GetValue(output)!;
            string? a = pr.GetValue(arch);
            int op = pr.GetValue(opset);
            if (op is < 7 or > 21) throw new CliException($"--opset must be between 7 and 21, got {op}");
            string outExt = Path.GetExtension(outPath).ToLowerInvariant();
            if (outExt is not (".onnx" or ".safetensors"))
                throw new CliException($"--out '{outPath}': the extension must be .onnx or .safetensors, to choose the format");
            if (Path.GetFullPath(outPath) == Path.GetFullPath(input)) throw new CliException("--out must differ from --model");
            if (a is not null && !ResNets.Architectures.Contains(a))
                throw new CliException($"unknown architecture '{a}'; valid: {string.Join(", ", ResNets.Architectures)}");

            ResNet<float> resnet;
            ModelMetadata metadata;
            if (ModelLoading.Detect(input) == ModelLoading.Format.Onnx)
            {
                (resnet, metadata) = OnnxImporter.ToResNet(input);
                if (a is not null && a != metadata.Architecture)
                    throw new CliException($"{input}: the file holds a {metadata.Architecture}, not a {a}", ExitCodes.Failure);
            }
            else
                (resnet, metadata) = ModelLoading.LoadNative(input, a);

            if (outExt == ".onnx") OnnxExporter.Export(resnet, metadata, outPath, op);
            else ModelFile.Save(resnet, metadata, outPath);
            Console.WriteLine($"{input} -> {outPath}: {metadata.Architecture}, {metadata.NumClasses} classes, {resnet.ParameterCount:N0} parameters" +
                (outExt == ".onnx" ? $", ONNX opset {op}" : ", native safetensors"));
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
