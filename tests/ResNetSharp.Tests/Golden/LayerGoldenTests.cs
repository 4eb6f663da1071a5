using ResNetSharp.Models;
using ResNetSharp.NN;
using ResNetSharp.Tensors;
using ResNetSharp.Tests.Support;

namespace ResNetSharp.Tests.Golden;

/// <summary>
/// Each layer in float32 against PyTorch 1.13 (tests/golden, recorded by tools/golden/make_golden.py).
/// Tolerances, relative to the largest magnitude of the expected tensor: 1e-4 forward, 1e-3 gradients.
/// </summary>
public class LayerGoldenTests
{
    [Theory]
    [InlineData("conv_k3s2p1_bias", 3, 2, 1)]
    [InlineData("conv_k1s1p0", 1, 1, 0)]
    [InlineData("conv_k7s2p3", 7, 2, 3)]
    [InlineData("conv_k3s1p1", 3, 1, 1)]
    [InlineData("conv_k1s2p0", 1, 2, 0)]
    public void Conv2d(string name, int k, int stride, int pad)
    {
        var f = Fixture.Load(name);
        var w = f.Float("w");
        bool hasBias = f.Names.Contains("b");
        var conv = new Conv2d<float>(w.Dim(1), w.Dim(0), k, stride, pad, hasBias);
        conv.Weight.Value.CopyFrom(w);
        if (hasBias) conv.Bias!.Value.CopyFrom(f.Float("b"));
        var y = conv.Forward(f.Float("x"));
        Compare.Close(f.Float("y"), y, Compare.Forward, $"{name} y");
        conv.ZeroGrad();
        var dx = conv.Backward(f.Float("dy"));
        Compare.Close(f.Float("dx"), dx, Compare.Gradient, $"{name} dx");
        Compare.Close(f.Float("dw"), conv.Weight.Grad, Compare.Gradient, $"{name} dw");
        if (hasBias) Compare.Close(f.Float("db"), conv.Bias!.Grad, Compare.Gradient, $"{name} db");
    }

    [Fact]
    public void BatchNormTraining()
    {
        var f = Fixture.Load("bn_train");
        var bn = new BatchNorm2d<float>(3);
        bn.Weight.Value.CopyFrom(f.Float("gamma"));
        bn.Bias.Value.CopyFrom(f.Float("beta"));
        bn.RunningMean.CopyFrom(f.Float("running_mean_in"));
        bn.RunningVar.CopyFrom(f.Float("running_var_in"));
        var y = bn.Forward(f.Float("x"));
        Compare.Close(f.Float("y"), y, Compare.Forward, "y");
        Compare.Close(f.Float("running_mean_out"), bn.RunningMean, Compare.Forward, "running mean");
        Compare.Close(f.Float("running_var_out"), bn.RunningVar, Compare.Forward, "running var (unbiased)");
        Assert.Equal(1, bn.NumBatchesTracked);
        var dx = bn.Backward(f.Float("dy"));
        Compare.Close(f.Float("dx"), dx, Compare.Gradient, "dx");
        Compare.Close(f.Float("dgamma"), bn.Weight.Grad, Compare.Gradient, "dgamma");
        Compare.Close(f.Float("dbeta"), bn.Bias.Grad, Compare.Gradient, "dbeta");
    }

    [Fact]
    public void BatchNormEvaluation()
    {
        var f = Fixture.Load("bn_eval");
        var bn = new BatchNorm2d<float>(3);
        bn.Weight.Value.CopyFrom(f.Float("gamma"));
        bn.Bias.Value.CopyFrom(f.Float("beta"));
        bn.RunningMean.CopyFrom(f.Float("running_mean"));
        bn.RunningVar.CopyFrom(f.Float("running_var"));
        bn.Eval();
        Compare.Close(f.Float("y"), bn.Forward(f.Float("x")), Compare.Forward, "y");
        Compare.Close(f.Float("running_mean"), bn.RunningMean, 0, "running mean untouched in evaluation");
        Compare.Close(f.Float("dx"), bn.Backward(f.Float("dy")), Compare.Gradient, "dx");
        Compare.Close(f.Float("dgamma"), bn.Weight.Grad, Compare.Gradient, "dgamma");
        Compare.Close(f.Float("dbeta"), bn.Bias.Grad, Compare.Gradient, "dbeta");
    }

    [Fact]
    public void ReLU()
    {
        var f = Fixture.Load("relu");
        var relu = new ReLU<float>();
        Compare.Close(f.Float("y"), relu.Forward(f.Float("x")), 0, "y");
        Compare.Close(f.Float("dx"), relu.Backward(f.Float("dy")), 0, "dx (zero at x = 0)");
    }

    [Theory]
    [InlineData("maxpool_k3s2p1")]
    [InlineData("maxpool_k3s2p1_even")]
    public void MaxPool(string name)
    {
        var f = Fixture.Load(name);
        var pool = new MaxPool2d<float>(3, 2, 1);
        Compare.Close(f.Float("y"), pool.Forward(f.Float("x")), 0, "y");
        Compare.Close(f.Float("dx"), pool.Backward(f.Float("dy")), Compare.Gradient, "dx (ties go to the first maximum)");
    }

    [Fact]
    public void AveragePoolAndFlatten()
    {
        var f = Fixture.Load("avgpool");
        var pool = new AdaptiveAvgPool2d<float>();
        var flatten = new Flatten<float>();
        Compare.Close(f.Float("y"), flatten.Forward(pool.Forward(f.Float("x"))), Compare.Forward, "y");
        Compare.Close(f.Float("dx"), pool.Backward(flatten.Backward(f.Float("dy"))), Compare.Gradient, "dx");
    }

    [Fact]
    public void Linear()
    {
        var f = Fixture.Load("linear");
        var w = f.Float("w");
        var fc = new Linear<float>(w.Dim(1), w.Dim(0));
        fc.Weight.Value.CopyFrom(w);
        fc.Bias!.Value.CopyFrom(f.Float("b"));
        Compare.Close(f.Float("y"), fc.Forward(f.Float("x")), Compare.Forward, "y");
        fc.ZeroGrad();
        Compare.Close(f.Float("dx"), fc.Backward(f.Float("dy")), Compare.Gradient, "dx");
        Compare.Close(f.Float("dw"), fc.Weight.Grad, Compare.Gradient, "dw");
        Compare.Close(f.Float("db"), fc.Bias.Grad, Compare.Gradient, "db");
    }

    [Fact]
    public void ResidualAddThenReLU()
    {
        var f = Fixture.Load("add");
        var add = new ResidualAdd<float>();
        var relu = new ReLU<float>();
        Compare.Close(f.Float("y"), relu.Forward(add.Forward(f.Float("a"), f.Float("b"), "add")), Compare.Forward, "y");
        var (da, db) = ResidualAdd<float>.Backward(relu.Backward(f.Float("dy")));
        Compare.Close(f.Float("da"), da, Compare.Gradient, "da");
        Compare.Close(f.Float("db"), db, Compare.Gradient, "db");
    }

    [Theory]
    [InlineData("cross_entropy", 0.0)]
    [InlineData("cross_entropy_ls", 0.1)]
    public void CrossEntropy(string name, double smoothing)
    {
        var f = Fixture.Load(name);
        var loss = new SoftmaxCrossEntropy<float>(smoothing);
        double l = loss.Forward(f.Float("logits"), f.Ints("targets"));
        Compare.Close(f.Float("loss").Span, [(float)l], Compare.Forward, "loss");
        Compare.Close(f.Float("dlogits"), loss.Backward(), Compare.Gradient, "dlogits");
    }

    [Fact]
    public void ZeroPadShortcut()
    {
        var f = Fixture.Load("shortcut_a");
        var sc = new ZeroPadShortcut<float>(4, 8, 2);
        Compare.Close(f.Float("y"), sc.Forward(f.Float("x")), 0, "y");
        Compare.Close(f.Float("dx"), sc.Backward(f.Float("dy")), 0, "dx");
    }
}
