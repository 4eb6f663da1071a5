namespace ResNetSharp.Kernels;

/// <summary>
/// Sizes of one 2-D convolution (square stride and padding, no dilation, no groups):
/// input (N,IC,H,W), weight (OC,IC,KH,KW), output (N,OC,OH,OW) with OH = (H + 2·pad − KH)/stride + 1.
/// </summary>
public readonly record struct ConvGeometry(int InChannels, int Height, int Width, int OutChannels,
    int KernelH, int KernelW, int Stride, int Padding)
{
    public int OutHeight => (Height + 2 * Padding - KernelH) / Stride + 1;
    public int OutWidth => (Width + 2 * Padding - KernelW) / Stride + 1;
    /// <summary>Rows of the im2col matrix: IC·KH·KW.</summary>
    public int PatchSize => InChannels * KernelH * KernelW;
    public int InPlane => Height * Width;
    public int OutPlane => OutHeight * OutWidth;
    public int InImage => InChannels * InPlane;
    public int OutImage => OutChannels * OutPlane;
    public int WeightSize => OutChannels * PatchSize;
    /// <summary>A 1x1, stride-1, unpadded convolution is a plain matrix product on the input: no im2col needed.</summary>
    public bool IsPointwise => KernelH == 1 && KernelW == 1 && Stride == 1 && Padding == 0;
    /// <summary>Multiply-adds for one image.</summary>
    public long MacsPerImage => (long)OutImage * PatchSize;
}
