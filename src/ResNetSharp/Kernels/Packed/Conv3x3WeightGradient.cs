using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// The weight gradient of a 3x3 stride-1 convolution on AVX-512:
/// dWᵀ[(ic, kh, kw)][oc] += Σ_q xPad[ic][q + kh·Wp + kw] · dyᵀ[q][oc], q over the output pixels in rows of Wp
/// (the last Wp − OW of each row have dy = 0). The nine taps of an input channel are fixed offsets from three row
/// pointers, so one register tile covers whole channels: one channel × 9 taps × 16 output channels (9 accumulators,
/// three pixels a step with each row's inputs carried between pixels: <see cref="One16"/>), or one channel × 9 taps
/// × 32 (repeated for each 32 output channels past that; 18 accumulators, 2 vector loads and 9 broadcasts per pixel).
/// The general GEMM form of this product ran a 32-wide tile with 16 of its columns zero for resnet20's 16 channels.
/// Tested against <see cref="Reference.Conv2dReference"/> through <see cref="Conv2dKernel.Backward{T}"/>.
/// </summary>
internal static unsafe class Conv3x3WeightGradient
{
    /// <summary>Whether this kernel takes a convolution's weight gradient on this machine.</summary>
    public static bool Supports(in ConvGeometry g) =>
        Vector512.IsHardwareAccelerated && g.KernelH == 3 && g.KernelW == 3 && g.Stride == 1 && g.Padding <= 2;

    /// <summary>Output channels padded to the tile's width: 16, or a multiple of 32.</summary>
    public static int PaddedOutChannels(int outChannels) => outChannels <= 16 ? 16 : (outChannels + 31) / 32 * 32;

    /// <summary>
    /// dyT[t][q][o] = dy[t][o][y][x] for q = y·Wp + x with x &lt; OW, 0 elsewhere (junk columns, lanes past OC):
    /// `images` images' gradients transposed into pixel-major rows of <see cref="PaddedOutChannels"/> floats.
    /// </summary>
    public static void TransposeGradients(in ConvGeometry g, float* dy, int images, float* dyT) =>
        GradientPanels.Pack(g, dy, images, g.Width + 2 * g.Padding, PaddedOutChannels(g.OutChannels), 1, 0, dyT);

    /// <summary>
    /// dwT ([IC·9][ocPad], row (ic·9 + kh·3 + kw)) += the products over `images` images: image t's zero-padded input
    /// (IC, Hp, Wp) at xPad + t·xImage (readable 2 floats past each plane), its transposed gradient at
    /// dyT + t·wide·ocPad.
    /// </summary>
    public static void Accumulate(in ConvGeometry g, float* xPad, long xImage, float* dyT, int images, float* dwT)
    {
        int ic = g.InChannels, ocPad = PaddedOutChannels(g.OutChannels);
        int wp = g.Width + 2 * g.Padding, hp = g.Height + 2 * g.Padding, plane = hp * wp, wide = g.OutHeight * wp;
        long dyImage = (long)wide * ocPad;
        if (ocPad == 16 && CarriedTaps)
            for (int c = 0; c < ic; c++)
                One16(xPad + (long)c * plane, wp, g.OutWidth, xImage, dyT, dyImage, wide, images, dwT + (long)c * 9 * 16);
        else if (ocPad == 16)
            for (int c = 0; c < ic; c += 2)
            {
                // An odd last channel pairs with itself; the copy's sums are dropped.
                int second = c + 1 < ic ? plane : 0;
                Two16(xPad + (long)c * plane, second, wp, g.OutWidth, xImage, dyT, dyImage, wide, images, dwT + (long)c * 9 * 16, c + 1 < ic);
            }
        else
            for (int c = 0; c < ic; c++)
                for (int half = 0; half < ocPad; half += 32)
                    One32(xPad + (long)c * plane, wp, g.OutWidth, xImage, dyT + half, dyImage, ocPad, wide, images, dwT + (long)c * 9 * ocPad + half);
    }

    // Channels c and c + 1 (at x and x + second), 16 output channels: 18 accumulators a{channel}{tap}. Each wide row
    // of wp pixels runs over its first ow only: the rest are junk columns, whose gradients are zero (a 7x7 image
    // has 2 of every 9).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Two16(float* x, int second, int wp, int ow, long xImage, float* dyT, long dyImage, int wide, int images, float* dwT, bool both)
    {
        var z = Vector512<float>.Zero;
        Vector512<float> a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, a8 = z;
        Vector512<float> b0 = z, b1 = z, b2 = z, b3 = z, b4 = z, b5 = z, b6 = z, b7 = z, b8 = z;
        for (int t = 0; t < images; t++)
        {
            float* r0 = x + t * xImage, r1 = r0 + wp, r2 = r1 + wp;
            float* s0 = r0 + second, s1 = s0 + wp, s2 = s1 + wp;
            for (int row = 0; row < wide; row += wp)
            {
                float* d = dyT + t * dyImage + (long)row * 16;
                for (int q = row; q < row + ow; q++, d += 16)
                {
                    var v = Vector512.Load(d);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[q]), v, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[q + 1]), v, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[q + 2]), v, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[q]), v, a3);
                    a4 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[q + 1]), v, a4);
                    a5 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[q + 2]), v, a5);
                    a6 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[q]), v, a6);
                    a7 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[q + 1]), v, a7);
                    a8 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[q + 2]), v, a8);
                    b0 = Vector512.FusedMultiplyAdd(Vector512.Create(s0[q]), v, b0);
                    b1 = Vector512.FusedMultiplyAdd(Vector512.Create(s0[q + 1]), v, b1);
                    b2 = Vector512.FusedMultiplyAdd(Vector512.Create(s0[q + 2]), v, b2);
                    b3 = Vector512.FusedMultiplyAdd(Vector512.Create(s1[q]), v, b3);
                    b4 = Vector512.FusedMultiplyAdd(Vector512.Create(s1[q + 1]), v, b4);
                    b5 = Vector512.FusedMultiplyAdd(Vector512.Create(s1[q + 2]), v, b5);
                    b6 = Vector512.FusedMultiplyAdd(Vector512.Create(s2[q]), v, b6);
                    b7 = Vector512.FusedMultiplyAdd(Vector512.Create(s2[q + 1]), v, b7);
                    b8 = Vector512.FusedMultiplyAdd(Vector512.Create(s2[q + 2]), v, b8);
                }
            }
        }
        AddTo(dwT, a0); AddTo(dwT + 16, a1); AddTo(dwT + 32, a2); AddTo(dwT + 48, a3); AddTo(dwT + 64, a4);
        AddTo(dwT + 80, a5); AddTo(dwT + 96, a6); AddTo(dwT + 112, a7); AddTo(dwT + 128, a8);
        if (!both) return;
        float* e = dwT + 9 * 16;
        AddTo(e, b0); AddTo(e + 16, b1); AddTo(e + 32, b2); AddTo(e + 48, b3); AddTo(e + 64, b4);
        AddTo(e + 80, b5); AddTo(e + 96, b6); AddTo(e + 112, b7); AddTo(e + 128, b8);
    }

    /// <summary>Whether 16 output channels take <see cref="One16"/> (on by default; off: Two16, only to measure and test it).</summary>
    internal static bool CarriedTaps = true;

    // One channel, 16 output channels: 9 accumulators a{tap}, three pixels a step along each row. Pixel q's taps
    // kw = 1 and 2 are pixel q + 1's kw = 0 and 1, so each kernel row's broadcast inputs are carried from step to step
    // and a step loads 3 gradient vectors and 9 input values for 27 multiply-adds (Two16 loads 19 per 18, more loads
    // than the cycles its multiply-adds take). Rows end at their last output, as in Two16 (the carried values are
    // only ever taps of real outputs), and every accumulator adds its pixels in order: Two16's bits.
    // `bench/run.sh --ab Conv3x3WeightGradient.CarriedTaps=false,true --ab-work r20-train --ab-layers --rounds 30`:
    // resnet20's six 16-channel layers' backward (dx and dw) 0.83–0.90x (noise floor 0.95–1.02), the step 0.981x
    // (1.001). A first version ran over the junk columns too (0.943–0.948x, step 0.991x), where an infinite input
    // made NaN of taps that never meet it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void One16(float* x, int wp, int ow, long xImage, float* dyT, long dyImage, int wide, int images, float* dwT)
    {
        var z = Vector512<float>.Zero;
        Vector512<float> a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, a8 = z;
        for (int t = 0; t < images; t++)
            for (int row = 0; row < wide; row += wp)
            {
                float* r0 = x + t * xImage + row, r1 = r0 + wp, r2 = r1 + wp;
                float* d = dyT + t * dyImage + (long)row * 16;
                var p0 = Vector512.Create(r0[0]); var p1 = Vector512.Create(r0[1]);
                var m0 = Vector512.Create(r1[0]); var m1 = Vector512.Create(r1[1]);
                var n0 = Vector512.Create(r2[0]); var n1 = Vector512.Create(r2[1]);
                int q = 0;
                for (; q + 3 <= ow; q += 3, d += 48)
                {
                    var v0 = Vector512.Load(d); var v1 = Vector512.Load(d + 16); var v2 = Vector512.Load(d + 32);
                    var p2 = Vector512.Create(r0[q + 2]); var p3 = Vector512.Create(r0[q + 3]); var p4 = Vector512.Create(r0[q + 4]);
                    a0 = Vector512.FusedMultiplyAdd(p0, v0, a0); a1 = Vector512.FusedMultiplyAdd(p1, v0, a1); a2 = Vector512.FusedMultiplyAdd(p2, v0, a2);
                    a0 = Vector512.FusedMultiplyAdd(p1, v1, a0); a1 = Vector512.FusedMultiplyAdd(p2, v1, a1); a2 = Vector512.FusedMultiplyAdd(p3, v1, a2);
                    a0 = Vector512.FusedMultiplyAdd(p2, v2, a0); a1 = Vector512.FusedMultiplyAdd(p3, v2, a1); a2 = Vector512.FusedMultiplyAdd(p4, v2, a2);
                    p0 = p3; p1 = p4;
                    var m2 = Vector512.Create(r1[q + 2]); var m3 = Vector512.Create(r1[q + 3]); var m4 = Vector512.Create(r1[q + 4]);
                    a3 = Vector512.FusedMultiplyAdd(m0, v0, a3); a4 = Vector512.FusedMultiplyAdd(m1, v0, a4); a5 = Vector512.FusedMultiplyAdd(m2, v0, a5);
                    a3 = Vector512.FusedMultiplyAdd(m1, v1, a3); a4 = Vector512.FusedMultiplyAdd(m2, v1, a4); a5 = Vector512.FusedMultiplyAdd(m3, v1, a5);
                    a3 = Vector512.FusedMultiplyAdd(m2, v2, a3); a4 = Vector512.FusedMultiplyAdd(m3, v2, a4); a5 = Vector512.FusedMultiplyAdd(m4, v2, a5);
                    m0 = m3; m1 = m4;
                    var n2 = Vector512.Create(r2[q + 2]); var n3 = Vector512.Create(r2[q + 3]); var n4 = Vector512.Create(r2[q + 4]);
                    a6 = Vector512.FusedMultiplyAdd(n0, v0, a6); a7 = Vector512.FusedMultiplyAdd(n1, v0, a7); a8 = Vector512.FusedMultiplyAdd(n2, v0, a8);
                    a6 = Vector512.FusedMultiplyAdd(n1, v1, a6); a7 = Vector512.FusedMultiplyAdd(n2, v1, a7); a8 = Vector512.FusedMultiplyAdd(n3, v1, a8);
                    a6 = Vector512.FusedMultiplyAdd(n2, v2, a6); a7 = Vector512.FusedMultiplyAdd(n3, v2, a7); a8 = Vector512.FusedMultiplyAdd(n4, v2, a8);
                    n0 = n3; n1 = n4;
                }
                for (; q < ow; q++, d += 16)
                {
                    var v = Vector512.Load(d);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[q]), v, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[q + 1]), v, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[q + 2]), v, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[q]), v, a3);
                    a4 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[q + 1]), v, a4);
                    a5 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[q + 2]), v, a5);
                    a6 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[q]), v, a6);
                    a7 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[q + 1]), v, a7);
                    a8 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[q + 2]), v, a8);
                }
            }
        AddTo(dwT, a0); AddTo(dwT + 16, a1); AddTo(dwT + 32, a2); AddTo(dwT + 48, a3); AddTo(dwT + 64, a4);
        AddTo(dwT + 80, a5); AddTo(dwT + 96, a6); AddTo(dwT + 112, a7); AddTo(dwT + 128, a8);
    }

    // One channel, 32 output channels (of rows of `stride`): 18 accumulators a{tap} (lanes 0–15) and b{tap} (16–31).
    // Junk columns skipped as in Two16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void One32(float* x, int wp, int ow, long xImage, float* dyT, long dyImage, int stride, int wide, int images, float* dwT)
    {
        var z = Vector512<float>.Zero;
        Vector512<float> a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, a8 = z;
        Vector512<float> b0 = z, b1 = z, b2 = z, b3 = z, b4 = z, b5 = z, b6 = z, b7 = z, b8 = z;
        for (int t = 0; t < images; t++)
        {
            float* r0 = x + t * xImage, r1 = r0 + wp, r2 = r1 + wp;
            for (int row = 0; row < wide; row += wp)
            {
                float* d = dyT + t * dyImage + (long)row * stride;
                for (int q = row; q < row + ow; q++, d += stride)
                {
                    var v = Vector512.Load(d);
                    var u = Vector512.Load(d + 16);
                    var s = Vector512.Create(r0[q]); a0 = Vector512.FusedMultiplyAdd(s, v, a0); b0 = Vector512.FusedMultiplyAdd(s, u, b0);
                    s = Vector512.Create(r0[q + 1]); a1 = Vector512.FusedMultiplyAdd(s, v, a1); b1 = Vector512.FusedMultiplyAdd(s, u, b1);
                    s = Vector512.Create(r0[q + 2]); a2 = Vector512.FusedMultiplyAdd(s, v, a2); b2 = Vector512.FusedMultiplyAdd(s, u, b2);
                    s = Vector512.Create(r1[q]); a3 = Vector512.FusedMultiplyAdd(s, v, a3); b3 = Vector512.FusedMultiplyAdd(s, u, b3);
                    s = Vector512.Create(r1[q + 1]); a4 = Vector512.FusedMultiplyAdd(s, v, a4); b4 = Vector512.FusedMultiplyAdd(s, u, b4);
                    s = Vector512.Create(r1[q + 2]); a5 = Vector512.FusedMultiplyAdd(s, v, a5); b5 = Vector512.FusedMultiplyAdd(s, u, b5);
                    s = Vector512.Create(r2[q]); a6 = Vector512.FusedMultiplyAdd(s, v, a6); b6 = Vector512.FusedMultiplyAdd(s, u, b6);
                    s = Vector512.Create(r2[q + 1]); a7 = Vector512.FusedMultiplyAdd(s, v, a7); b7 = Vector512.FusedMultiplyAdd(s, u, b7);
                    s = Vector512.Create(r2[q + 2]); a8 = Vector512.FusedMultiplyAdd(s, v, a8); b8 = Vector512.FusedMultiplyAdd(s, u, b8);
                }
            }
        }
        int rs = stride;
        AddTo(dwT, a0); AddTo(dwT + 16, b0); AddTo(dwT + rs, a1); AddTo(dwT + rs + 16, b1); AddTo(dwT + 2 * rs, a2); AddTo(dwT + 2 * rs + 16, b2);
        AddTo(dwT + 3 * rs, a3); AddTo(dwT + 3 * rs + 16, b3); AddTo(dwT + 4 * rs, a4); AddTo(dwT + 4 * rs + 16, b4); AddTo(dwT + 5 * rs, a5); AddTo(dwT + 5 * rs + 16, b5);
        AddTo(dwT + 6 * rs, a6); AddTo(dwT + 6 * rs + 16, b6); AddTo(dwT + 7 * rs, a7); AddTo(dwT + 7 * rs + 16, b7); AddTo(dwT + 8 * rs, a8); AddTo(dwT + 8 * rs + 16, b8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTo(float* p, Vector512<float> v) => (Vector512.Load(p) + v).Store(p);
}
