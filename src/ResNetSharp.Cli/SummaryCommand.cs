using System.CommandLine;
using System.Text;
using System.Text.Json;
using ResNetSharp.Models;
using ResNetSharp.NN;

namespace ResNetSharp.Cli;

/// <summary>`resnet summary`: a Keras-style table of layers, output shapes, parameters and multiply-adds.</summary>
internal static class SummaryCommand
{
    public static Command Create()
    {
        var options = new ModelOptions();
        var cmd = options.AddTo(new Command("summary", "Print the layers of an architecture with output shapes, parameters and multiply-adds"));
        cmd.SetAction(pr =>
        {
            var r = options.Read(pr);
            var (a, c, h, w) = (r.Arch, r.C, r.H, r.W);
            var model = options.Build(r);
            ModelSummary summary;
            try { summary = model.Summarize(c, h, w); }
            catch (ShapeMismatchException e) { throw new CliException($"input {c}x{h}x{w} does not fit {a}: {e.Message}"); }
            Console.Out.Write(r.Json ? ToJson(summary) + "\n" : ToTable(summary));
            return ExitCodes.Ok;
        });
        return cmd;
    }

    public static string ToJson(ModelSummary s) => JsonSerializer.Serialize(new
    {
        arch = s.Architecture,
        input = s.InputShape,
        output = s.OutputShape,
        @params = s.Parameters,
        macs = s.Macs,
        layers = s.Layers.Select(l => new { name = l.Name, type = l.Kind, output = l.OutputShape[1..], @params = l.Parameters, macs = l.Macs }),
    });

    public static string ToTable(ModelSummary s)
    {
        var rows = s.Layers.Select(l => (l.Name, l.Kind, Shape: "(N, " + string.Join(", ", l.OutputShape[1..]) + ")",
            Params: l.Parameters.ToString("N0"), Macs: l.Macs.ToString("N0"))).ToList();
        int wName = Math.Max(5, rows.Max(r => r.Name.Length + r.Kind.Length + 3));
        int wShape = Math.Max(12, rows.Max(r => r.Shape.Length));
        int wParams = Math.Max(7, rows.Max(r => r.Params.Length));
        int wMacs = Math.Max(13, rows.Max(r => r.Macs.Length));
        var sb = new StringBuilder();
        string rule = new('─', wName + wShape + wParams + wMacs + 6);
        sb.AppendLine($"Model: {s.Architecture}, input (N, {string.Join(", ", s.InputShape)})");
        sb.AppendLine(rule);
        sb.AppendLine($"{"Layer (type)".PadRight(wName)}  {"Output shape".PadRight(wShape)}  {"Param #".PadLeft(wParams)}  {"Multiply-adds".PadLeft(wMacs)}");
        sb.AppendLine(rule);
        foreach (var r in rows)
            sb.AppendLine($"{$"{r.Name} ({r.Kind})".PadRight(wName)}  {r.Shape.PadRight(wShape)}  {r.Params.PadLeft(wParams)}  {r.Macs.PadLeft(wMacs)}");
        sb.AppendLine(rule);
        sb.AppendLine($"Total params: {s.Parameters:N0} ({s.Parameters * 4.0 / (1 << 20):F2} MB as float32)");
        sb.AppendLine($"Multiply-adds per image: {s.Macs:N0} ({s.Macs / 1e9:F3} G)");
        sb.AppendLine($"Output: (N, {string.Join(", ", s.OutputShape)})");
        return sb.ToString();
    }
}
