using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Training;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Golden;

/// <summary>
/// Whole models against PyTorch. Weights, BN statistics and inputs come from the shared name-seeded generator
/// (tools/golden/README.md), so the fixtures hold only inputs and results.
/// </summary>
public class ModelGoldenTests
{
    [Fact]
    public void GeneratorMatchesPythonBitForBit()
    {
        var f = Fixture.Load("det_check");
        Assert.Equal(f.Float("input_first8").Span.ToArray(), DeterministicValues.Det("input", 8));
        uint seed = DeterministicValues.Fnv1a32("input");
        Assert.Equal(f.Raw("input_hash_first8").ToInt64().Select(v => (uint)v), Enumerable.Range(0, 8).Select(i => DeterministicValues.Hash(seed, (uint)i)));
        var conv1 = DeterministicValues.ForParameter("conv1.weight", [16, 3, 3, 3]);
        Assert.Equal(f.Float("conv1_weight_first8").Span.ToArray(), conv1[..8]);
        // rule.<name> holds the first 8 values of that resnet20 state-dict entry, flattened.
        var shapes = ResNets.Create("resnet20").NamedParameters().Select(p => (p.Name, Shape: p.Parameter.Value.ShapeArray))
            .Concat(ResNets.Create("resnet20").NamedBuffers().Select(b => (b.Name, Shape: b.Value.ShapeArray))).ToDictionary();
        int rules = 0;
        foreach (var key in f.Names.Where(n => n.StartsWith("rule.")))
        {
            var expected = f.Raw(key).ToFloat32();
            string name = key["rule.".Length..];
            var actual = DeterministicValues.ForParameter(name, shapes[name]);
            rules++;
            Assert.True(expected.SequenceEqual(actual[..expected.Length]), $"{key} differs from the Python rule");
        }
        Assert.True(rules >= 6, $"only {rules} rule checks in det_check");
    }

    [Fact]
    public void ResNet20TrainingForwardLossAndEveryGradient()
    {
        var f = Fixture.Load("resnet20_train");
        var model = ResNets.Create("resnet20");
        DeterministicValues.Apply(model);
        model.Train();
        var logits = model.Forward(f.Float("x"));
        Compare.Close(f.Float("logits"), logits, Compare.Forward, "logits");
        var loss = new SoftmaxCrossEntropy<float>();
        double l = loss.Forward(logits, f.Ints("targets"));
        Compare.Close(f.Float("loss").Span, [(float)l], Compare.Forward, "loss");
        model.ZeroGrad();
        model.Backward(loss.Backward());
        int checkedCount = 0;
        foreach (var (name, p) in model.NamedParameters())
        {
            Compare.Close(f.Float("grad." + name), p.Grad, Compare.Gradient, "grad." + name);
            checkedCount++;
        }
        Assert.Equal(f.Names.Count(n => n.StartsWith("grad.")), checkedCount);
        foreach (var (name, buffer) in model.NamedBuffers())
            Compare.Close(f.Float("after." + name), buffer, Compare.Forward, "after." + name);
    }

    [Fact]
    public void ResNet20Evaluation()
    {
        var f = Fixture.Load("resnet20_eval");
        var model = ResNets.Create("resnet20");
        DeterministicValues.Apply(model);
        model.Eval();
        Compare.Close(f.Float("logits"), model.Forward(f.Float("x")), Compare.Forward, "logits");
    }

    [Theory]
    [InlineData("resnet18")]
    [InlineData("resnet50")]
    public void ImageNetModelEvaluation(string arch)
    {
        var f = Fixture.Load(arch + "_eval");
        var model = ResNets.Create(arch);
        DeterministicValues.Apply(model);
        model.Eval();
        var x = f.Float("x");
        Assert.Equal(DeterministicValues.Det("input", x.Length), x.Span.ToArray());
        Compare.Close(f.Float("logits"), model.Forward(x), Compare.Forward, $"{arch} logits");
        if (f.Names.Contains("pooled"))
            Compare.Close(f.Float("pooled"), model.ForwardFeatures(x), Compare.Forward, $"{arch} pooled features");
    }

    [Fact]
    public void ResNet20ThreeSgdStepsGivePyTorchsLosses()
    {
        var f = Fixture.Load("resnet20_sgd");
        var model = ResNets.Create("resnet20");
        DeterministicValues.Apply(model);
        model.Train();
        var sgd = new Sgd<float>(model.NamedParameters().Select(p => p.Parameter), learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4);
        var loss = new SoftmaxCrossEntropy<float>();
        var losses = new float[3];
        for (int step = 0; step < 3; step++)
        {
            var logits = model.Forward(f.Float($"x{step}"));
            losses[step] = (float)loss.Forward(logits, f.Ints($"t{step}"));
            model.ZeroGrad();
            model.Backward(loss.Backward());
            sgd.Step();
        }
        Compare.Close(f.Float("losses").Span, losses, Compare.Forward, "loss sequence");
        Compare.Close(f.Float("after.conv1.weight"), model.Stem.Weight.Value, Compare.Gradient, "conv1.weight after three steps");
        Compare.Close(f.Float("after.fc.weight"), model.Fc.Weight.Value, Compare.Gradient, "fc.weight after three steps");
    }
}
