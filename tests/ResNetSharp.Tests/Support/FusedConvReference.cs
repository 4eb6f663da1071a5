using ResNetSharp.Kernels;
using ResNetSharp.Kernels.Reference;

namespace ResNetSharp.Tests.Support;

/// <summary>
/// What a fused inference convolution must compute, from the direct reference: NCHW conv with the per-channel scale
/// (folded BN) applied to the weights, + bias, + residual, then ReLU.
/// </summary>
public static class FusedConvReference
{
    public static float[] Compute(in ConvGeometry g, int batch, float[] x, float[] w, float[] scale, float[] bias, float[] residual)
    {
        var scaled = new float[w.Length];
        for (int o = 0; o < g.OutChannels; o++)
            for (int i = 0; i < g.PatchSize; i++) scaled[o * g.PatchSize + i] = w[o * g.PatchSize + i] * scale[o];
        var y = new float[batch * g.OutImage];
        Conv2dReference.Forward<float>(g, batch, x, scaled, bias, y);
        for (int i = 0; i < y.Length; i++) y[i] = Math.Max(0, y[i] + residual[i]);
        return y;
    }
}
