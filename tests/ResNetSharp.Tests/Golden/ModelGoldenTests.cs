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

    /// <summary>
    /// Three SGD steps (lr 0.1, momentum 0.9, weight decay 5e-4, BN in training mode) in double against PyTorch's
    /// float64 run: the optimiser, BN statistics and every gradient compose into the same trajectory.
    /// </summary>
    [Fact]
    public void ResNet20ThreeSgdStepsGivePyTorchsLosses()
    {
        var f = Fixture.Load("resnet20_sgd");
        var (losses, model) = ThreeSteps<double>(f);
        Compare.Close(f.Raw("losses").ToFloat64().Select(v => (float)v).ToArray(), losses.Select(v => (float)v).ToArray(), Compare.Forward, "loss sequence (float64)");
        Compare.Close(f.Float("after.conv1.weight").Span, model.Stem.Weight.Value.Span.ToArray().Select(v => (float)v).ToArray(), Compare.Gradient, "conv1.weight after three steps");
        Compare.Close(f.Float("after.fc.weight").Span, model.Fc.Weight.Value.Span.ToArray().Select(v => (float)v).ToArray(), Compare.Gradient, "fc.weight after three steps");
    }

    /// <summary>
    /// The same steps in float32. The first loss is a forward pass and must match to 1e-4. The later ones follow an
    /// ill-conditioned trajectory: at this initialisation float32 gradients of layer3.2.conv1.weight differ from float64
    /// by about 4% of their scale, in PyTorch as here (tools/golden/make_golden.py records both runs; PyTorch's own
    /// float32 third loss is 1.3e-4 from float64). So the float32 trajectory is held to 1e-2: a check that training
    /// in float follows the same path, not a precision claim; the double test above is the precision claim.
    /// </summary>
    [Fact]
    public void ResNet20ThreeSgdStepsInFloatFollowTheSameTrajectory()
    {
        var f = Fixture.Load("resnet20_sgd");
        var expected = f.Raw("losses").ToFloat64();
        var (losses, _) = ThreeSteps<float>(f);
        Assert.True(Math.Abs(losses[0] - expected[0]) <= Compare.Forward * expected[0], $"first loss {losses[0]} vs {expected[0]}");
        for (int k = 1; k < 3; k++)
            Assert.True(Math.Abs(losses[k] - expected[k]) <= 1e-2 * expected[k], $"loss {k}: {losses[k]} vs {expected[k]}");
    }

    private static (double[] Losses, ResNet<T> Model) ThreeSteps<T>(Fixture f) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var init = ResNets.Create("resnet20");
        DeterministicValues.Apply(init);
        var model = ResNets.Create<T>("resnet20");
        ResNetSharp.IO.StateDict.Load(model, ResNetSharp.IO.StateDict.From(init).ToDictionary());
        model.Train();
        var sgd = new Sgd<T>(model.NamedParameters().Select(p => p.Parameter), learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4);
        var loss = new SoftmaxCrossEntropy<T>();
        var losses = new double[3];
        for (int step = 0; step < 3; step++)
        {
            var x = f.Float($"x{step}");
            var input = new Tensor<T>(x.ShapeArray);
            for (int i = 0; i < x.Length; i++) input.Span[i] = T.CreateTruncating(x.Span[i]);
            losses[step] = loss.Forward(model.Forward(input), f.Ints($"t{step}"));
            model.ZeroGrad();
            model.Backward(loss.Backward());
            sgd.Step();
        }
        return (losses, model);
    }
}
