using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Reference;

namespace ResNetSharp.Tests.Kernels;

/// <summary>im2col + GEMM convolution against the direct seven-loop definition, forward and backward.</summary>
public class ConvKernelTests
{
    public static TheoryData<int, int, int, int, int, int, int, int> Geometries() => new()
    {
        // batch, ic, h, w, oc, k, stride, pad
        { 1, 1, 1, 1, 1, 1, 1, 0 },
        { 2, 3, 7, 6, 4, 3, 2, 1 },
        { 1, 3, 11, 9, 5, 7, 2, 3 },   // the ImageNet stem, odd sizes
        { 2, 5, 4, 5, 6, 1, 1, 0 },    // pointwise: no im2col
        { 2, 4, 7, 7, 8, 1, 2, 0 },    // strided projection shortcut
        { 1, 16, 9, 9, 15, 3, 1, 1 },
        { 1, 17, 8, 8, 17, 3, 1, 1 },
        { 3, 2, 3, 3, 3, 3, 1, 0 },    // output 1x1
        { 1, 2, 2, 2, 3, 3, 2, 1 },    // image smaller than the kernel, padding makes it fit
        { 1, 8, 33, 31, 9, 3, 2, 1 },  // large and odd
    };

    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Geometries))]
    public void ForwardAndBackwardMatchReference(int batch, int ic, int h, int w, int oc, int k, int stride, int pad)
    {
        var g = new ConvGeometry(ic, h, w, oc, k, k, stride, pad);
        var x = Random(batch * g.InImage, 1); var wt = Random(g.WeightSize, 2); var bias = Random(oc, 3);
        var dy = Random(batch * g.OutImage, 4);
        var scratch = new float[Conv2dKernel.ScratchSize(g)];

        var yRef = new float[batch * g.OutImage]; var y = new float[batch * g.OutImage];
        Conv2dReference.Forward<float>(g, batch, x, wt, bias, yRef);
        Conv2dKernel.Forward<float>(g, batch, x, wt, bias, y, scratch);
        AssertClose(yRef, y, g.PatchSize, "y");

        var dxRef = new float[x.Length]; var dwRef = new float[wt.Length]; var dbRef = new float[oc];
        var dx = new float[x.Length]; var dw = new float[wt.Length]; var db = new float[oc];
        Conv2dReference.Backward<float>(g, batch, x, wt, dy, dxRef, dwRef, dbRef);
        Conv2dKernel.Backward<float>(g, batch, x, wt, dy, dx, dw, db, scratch);
        AssertClose(dxRef, dx, oc * k * k, "dx");
        AssertClose(dwRef, dw, batch * g.OutPlane, "dw");
        AssertClose(dbRef, db, batch * g.OutPlane, "db");
    }

    private static void AssertClose(float[] expected, float[] actual, int terms, string what)
    {
        double tol = 1e-6 * Math.Max(1, terms);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"{what}[{i}]: expected {expected[i]}, got {actual[i]}");
    }
}
