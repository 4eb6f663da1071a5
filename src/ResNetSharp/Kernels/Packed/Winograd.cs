using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ResNetSharp.Runtime;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// Winograd F(4x4, 3x3) for stride-1, padding-1 3x3 convolutions on NHWC activations (Lavin and Gray 2015,
/// "Fast Algorithms for Convolutional Neural Networks"): each 4x4 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A over
/// the 6x6 input tile d. The 36 element-wise products, summed over input channels, are 36 matrix products
/// V_ξν (tiles, IC) · U_ξν (IC, OC) on the packed micro-kernel: 36·tiles·IC·OC multiply-adds instead of the
/// direct 9·16·tiles·IC·OC, a factor of 4. Input and output transforms run on channel vectors.
/// </summary>
public static unsafe class Winograd
{
    public const int Tile = 4, Window = 6, Points = 36;

    /// <summary>Whether a convolution can take this path: 3x3, stride 1, padding 1, channels in whole vectors.</summary>
    public static bool Supports(in ConvGeometry g) =>
        g.KernelH == 3 && g.KernelW == 3 && g.Stride == 1 && g.Padding == 1 && g.InChannels % 16 == 0 && g.OutChannels % 16 == 0;

    /// <summary>The 36 transformed weight matrices U_ξν = (G g Gᵀ)_ξν, each (IC, OC) packed for the micro-kernel; scale folds BN in.</summary>
    public static PackedWeights[] TransformWeights(ReadOnlySpan<float> w, int outChannels, int inChannels, ReadOnlySpan<float> scale)
    {
        // G for F(4,3): rows are the interpolation points 0, −1, 1, −2 (as 1/2), 2 and ∞.
        double[,] G = { { 1 / 4.0, 0, 0 }, { -1 / 6.0, -1 / 6.0, -1 / 6.0 }, { -1 / 6.0, 1 / 6.0, -1 / 6.0 },
                        { 1 / 24.0, 1 / 12.0, 1 / 6.0 }, { 1 / 24.0, -1 / 12.0, 1 / 6.0 }, { 0, 0, 1 } };
        var u = new float[Points][];
        for (int p = 0; p < Points; p++) u[p] = new float[outChannels * inChannels];
        var gg = new double[Window, 3];
        for (int oc = 0; oc < outChannels; oc++)
            for (int ic = 0; ic < inChannels; ic++)
            {
                int o = (oc * inChannels + ic) * 9;
                double s = scale.IsEmpty ? 1 : scale[oc];
                for (int i = 0; i < Window; i++)
                    for (int j = 0; j < 3; j++)
                        gg[i, j] = G[i, 0] * w[o + j] + G[i, 1] * w[o + 3 + j] + G[i, 2] * w[o + 6 + j];
                for (int i = 0; i < Window; i++)
                    for (int j = 0; j < Window; j++)
                        u[i * Window + j][oc * inChannels + ic] = (float)(s * (gg[i, 0] * G[j, 0] + gg[i, 1] * G[j, 1] + gg[i, 2] * G[j, 2]));
            }
        return u.Select(m => PackedWeights.FromOihw(m, outChannels, inChannels, 1, default, default)).ToArray();
    }

    public static int TileCount(in ConvGeometry g, int batch) => batch * ((g.OutHeight + 3) / 4) * ((g.OutWidth + 3) / 4);

    /// <summary>
    /// y (N,H,W,OC) = conv3x3(x) + bias (+ residual) (then ReLU). v and m are scratch of 36·tiles·IC and 36·tiles·OC
    /// floats; rowOffsets[t] = t·IC for t &lt; tiles.
    /// </summary>
    public static void Forward(in ConvGeometry g, int batch, PackedWeights[] u, float* bias, int[] rowOffsets,
        float* x, float* y, float* residual, bool relu, float* v, float* m)
    {
        int tiles = TileCount(g, batch), ic = g.InChannels, oc = g.OutChannels;
        if (PackedGemm.NR == 64) InputTransform<Ops512, Vector512<float>>(g, batch, x, v);
        else if (PackedGemm.NR == 16) InputTransform<Ops256, Vector256<float>>(g, batch, x, v);
        else InputTransform<Ops128, Vector128<float>>(g, batch, x, v);
        PackedGemm.RunBatched(u.Select(w => w.AsPanels()).ToArray(), v, (long)tiles * ic, rowOffsets, tiles, m, (long)tiles * oc, oc);
        if (PackedGemm.NR == 64) OutputTransform<Ops512, Vector512<float>>(g, batch, m, bias, residual, relu, y);
        else if (PackedGemm.NR == 16) OutputTransform<Ops256, Vector256<float>>(g, batch, m, bias, residual, relu, y);
        else OutputTransform<Ops128, Vector128<float>>(g, batch, m, bias, residual, relu, y);
    }

    // V[ξν][tile][c] = (Bᵀ d B)[ξ][ν] for the 6x6 input tile at (4·ty − 1, 4·tx − 1), zero outside the image.
    private static void InputTransform<TOps, TV>(ConvGeometry g, int batch, float* x, float* v) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int th = (g.OutHeight + 3) / 4, tw = (g.OutWidth + 3) / 4, tiles = batch * th * tw, ic = g.InChannels, L = TOps.Lanes;
        nint xp = (nint)x, vp = (nint)v;
        WorkerPool.For(batch * th, row =>
        {
            int n = row / th, ty = row % th;
            TV* d = stackalloc TV[Points];
            TV* t = stackalloc TV[Points];
            for (int tx = 0; tx < tw; tx++)
            {
                int tile = row * tw + tx;
                int y0 = ty * 4 - 1, x0 = tx * 4 - 1;
                bool interior = y0 >= 0 && x0 >= 0 && y0 + Window <= g.Height && x0 + Window <= g.Width;
                float* origin = (float*)xp + (((long)n * g.Height + y0) * g.Width + x0) * ic;
                long rowStride = (long)g.Width * ic;
                for (int c = 0; c < ic; c += L)
                {
                    if (interior)
                        for (int i = 0; i < Window; i++)
                        {
                            float* r = origin + i * rowStride + c;
                            d[i * 6] = TOps.Load(r); d[i * 6 + 1] = TOps.Load(r + ic); d[i * 6 + 2] = TOps.Load(r + 2 * ic);
                            d[i * 6 + 3] = TOps.Load(r + 3 * ic); d[i * 6 + 4] = TOps.Load(r + 4 * ic); d[i * 6 + 5] = TOps.Load(r + 5 * ic);
                        }
                    else
                        for (int i = 0; i < Window; i++)
                        {
                            int iy = y0 + i;
                            for (int j = 0; j < Window; j++)
                            {
                                int ix = x0 + j;
                                d[i * Window + j] = (uint)iy < (uint)g.Height && (uint)ix < (uint)g.Width
                                    ? TOps.Load(origin + i * rowStride + (long)j * ic + c) : TOps.Zero;
                            }
                        }
                    for (int j = 0; j < Window; j++) TransformInputColumn<TOps, TV>(d, t, j);     // t = Bᵀ d
                    for (int i = 0; i < Window; i++) TransformInputRow<TOps, TV>(t, d, i);        // d = t B
                    float* dst = (float*)vp + (long)tile * ic + c;
                    for (int p = 0; p < Points; p++) TOps.Store(dst + (long)p * tiles * ic, d[p]);
                }
            }
        });
    }

    // The six rows of Bᵀ applied to one column (stride 6) or one row (stride 1) of six values.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransformInputColumn<TOps, TV>(TV* src, TV* dst, int j) where TOps : IVectorOps<TV> where TV : unmanaged =>
        InputRows<TOps, TV>(src[j], src[6 + j], src[12 + j], src[18 + j], src[24 + j], src[30 + j], dst + j, 6);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransformInputRow<TOps, TV>(TV* src, TV* dst, int i) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV* r = src + i * 6;
        InputRows<TOps, TV>(r[0], r[1], r[2], r[3], r[4], r[5], dst + i * 6, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputRows<TOps, TV>(TV d0, TV d1, TV d2, TV d3, TV d4, TV d5, TV* o, int stride) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV four = TOps.Broadcast(4f), five = TOps.Broadcast(5f), two = TOps.Broadcast(2f);
        TV d4m4d2 = TOps.Add(d4, TOps.Multiply(TOps.Broadcast(-4f), d2));   // d4 − 4·d2
        TV d3m4d1 = TOps.Add(d3, TOps.Multiply(TOps.Broadcast(-4f), d1));   // d3 − 4·d1
        TV d4md2 = TOps.Add(d4, TOps.Multiply(TOps.Broadcast(-1f), d2));    // d4 − d2
        TV d3md1 = TOps.Add(d3, TOps.Multiply(TOps.Broadcast(-1f), d1));    // d3 − d1
        o[0] = TOps.Add(TOps.MultiplyAdd(four, d0, TOps.Multiply(five, TOps.Multiply(TOps.Broadcast(-1f), d2))), d4);  // 4d0 − 5d2 + d4
        o[stride] = TOps.Add(d4m4d2, d3m4d1);                                       // −4d1 − 4d2 + d3 + d4
        o[2 * stride] = TOps.Add(d4m4d2, TOps.Multiply(TOps.Broadcast(-1f), d3m4d1)); // 4d1 − 4d2 − d3 + d4
        o[3 * stride] = TOps.MultiplyAdd(two, d3md1, d4md2);                        // −2d1 − d2 + 2d3 + d4
        o[4 * stride] = TOps.MultiplyAdd(TOps.Broadcast(-2f), d3md1, d4md2);        // 2d1 − d2 − 2d3 + d4
        o[5 * stride] = TOps.Add(TOps.MultiplyAdd(four, d1, TOps.Multiply(TOps.Broadcast(-5f), d3)), d5);  // 4d1 − 5d3 + d5
    }

    // y tile = Aᵀ M A (+ bias, + residual, ReLU), cropped at the image edge.
    private static void OutputTransform<TOps, TV>(ConvGeometry g, int batch, float* m, float* bias, float* residual, bool relu, float* y)
        where TOps : IVectorOps<TV> where TV : unmanaged
    {
        int oh = g.OutHeight, ow = g.OutWidth, th = (oh + 3) / 4, tw = (ow + 3) / 4, tiles = batch * th * tw, oc = g.OutChannels, L = TOps.Lanes;
        nint mp = (nint)m, bp = (nint)bias, rp = (nint)residual, yp = (nint)y;
        WorkerPool.For(batch * th, row =>
        {
            int n = row / th, ty = row % th;
            TV* s = stackalloc TV[Points];
            TV* t = stackalloc TV[Window * Tile];
            TV* o = stackalloc TV[Tile];
            for (int tx = 0; tx < tw; tx++)
            {
                int tile = row * tw + tx;
                for (int c = 0; c < oc; c += L)
                {
                    float* src = (float*)mp + (long)tile * oc + c;
                    for (int p = 0; p < Points; p++) s[p] = TOps.Load(src + (long)p * tiles * oc);
                    for (int j = 0; j < Window; j++)   // t (4x6) = Aᵀ s
                        OutputRows<TOps, TV>(s[j], s[6 + j], s[12 + j], s[18 + j], s[24 + j], s[30 + j], t + j, 6);
                    TV b = bp == 0 ? TOps.Zero : TOps.Load((float*)bp + c);
                    for (int i = 0; i < Tile; i++)
                    {
                        int yy = ty * 4 + i;
                        if (yy >= oh) break;
                        TV* r = t + i * 6;
                        OutputRows<TOps, TV>(r[0], r[1], r[2], r[3], r[4], r[5], o, 1);   // row i of t A
                        for (int j = 0; j < Tile; j++)
                        {
                            int xx = tx * 4 + j;
                            if (xx >= ow) break;
                            long at = (((long)n * oh + yy) * ow + xx) * oc + c;
                            TV val = TOps.Add(o[j], b);
                            if (rp != 0) val = TOps.Add(val, TOps.Load((float*)rp + at));
                            if (relu) val = TOps.Max(val, TOps.Zero);
                            TOps.Store((float*)yp + at, val);
                        }
                    }
                }
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputRows<TOps, TV>(TV m0, TV m1, TV m2, TV m3, TV m4, TV m5, TV* o, int stride) where TOps : IVectorOps<TV> where TV : unmanaged
    {
        TV a = TOps.Add(m1, m2), b = TOps.Add(m1, TOps.Multiply(TOps.Broadcast(-1f), m2));
        TV c = TOps.Add(m3, m4), d = TOps.Add(m3, TOps.Multiply(TOps.Broadcast(-1f), m4));
        o[0] = TOps.Add(TOps.Add(m0, a), c);                                  // m0 + m1 + m2 + m3 + m4
        o[stride] = TOps.MultiplyAdd(TOps.Broadcast(2f), d, b);               // m1 − m2 + 2(m3 − m4)
        o[2 * stride] = TOps.MultiplyAdd(TOps.Broadcast(4f), c, a);           // m1 + m2 + 4(m3 + m4)
        o[3 * stride] = TOps.Add(TOps.MultiplyAdd(TOps.Broadcast(8f), d, b), m5);  // m1 − m2 + 8(m3 − m4) + m5
    }
}
