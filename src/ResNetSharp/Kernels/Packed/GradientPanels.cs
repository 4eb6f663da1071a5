using System.Runtime.Intrinsics;

namespace ResNetSharp.Kernels.Packed;

/// <summary>
/// The output gradient of a convolution transposed into panels for a weight-gradient product: for output channel o
/// in panel o / W (W = panel width), image t and output pixel (y, x),
/// dst[(o / W)·panelStride + (t·OH·rowWidth + y·rowWidth + x)·W + o mod W] = dy[t][o][y][x], and 0 for the
/// rowWidth − OW junk columns of each row and the lanes past the last channel. The rows have the width of the
/// input views the product pairs them with (the padded width, or a phase's width for stride 2).
/// </summary>
internal static unsafe class GradientPanels
{
    public static void Pack(in ConvGeometry g, float* dy, int images, int rowWidth, int panelWidth, int panels, long panelStride, float* dst)
    {
        if (Vector512.IsHardwareAccelerated && panelWidth % 16 == 0) PackBlocks(g, dy, images, rowWidth, panelWidth, panels, panelStride, dst);
        else PackScalar(g, dy, images, rowWidth, panelWidth, panels, panelStride, dst);
    }

    // 16 channels × 16 pixels at a time, transposed in registers (one element at a time, this took longer than the
    // products it feeds).
    private static void PackBlocks(in ConvGeometry g, float* dy, int images, int rowWidth, int panelWidth, int panels, long panelStride, float* dst)
    {
        int oc = g.OutChannels, ow = g.OutWidth, plane = g.OutPlane, wide = g.OutHeight * rowWidth;
        long end = (long)images * oc * plane;
        float* tail = stackalloc float[16 * 16];
        var rows = stackalloc float*[16];
        for (int t = 0; t < images; t++)
            for (int o0 = 0; o0 < panels * panelWidth; o0 += 16)
            {
                float* d = dst + (o0 / panelWidth) * panelStride + (long)t * wide * panelWidth + o0 % panelWidth;
                for (int y = 0; y < g.OutHeight; y++)
                {
                    for (int x0 = 0; x0 < ow; x0 += 16)
                    {
                        int count = Math.Min(16, ow - x0);
                        for (int i = 0; i < 16; i++)
                        {
                            int o = o0 + i;
                            long at = ((long)t * oc + Math.Min(o, oc - 1)) * plane + y * ow + x0;
                            if (o >= oc) rows[i] = null;
                            else if (at + 16 <= end) rows[i] = dy + at;  // past the row's end: the next row's pixels, never stored
                            else
                            {
                                // The very last pixels: copied out, so that a full vector never reads past the gradients.
                                float* src = dy + at;
                                float* r = tail + i * 16;
                                for (int j = 0; j < 16; j++) r[j] = j < count ? src[j] : 0f;
                                rows[i] = r;
                            }
                        }
                        Transposes.Transpose16(rows, d + (long)(y * rowWidth + x0) * panelWidth, panelWidth, count);
                    }
                    for (int x = ow; x < rowWidth; x++) Vector512<float>.Zero.Store(d + (long)(y * rowWidth + x) * panelWidth);
                }
            }
    }

    private static void PackScalar(in ConvGeometry g, float* dy, int images, int rowWidth, int panelWidth, int panels, long panelStride, float* dst)
    {
        int oc = g.OutChannels, wide = g.OutHeight * rowWidth;
        for (int panel = 0; panel < panels; panel++)
            new Span<float>(dst + panel * panelStride, images * wide * panelWidth).Clear();
        for (int t = 0; t < images; t++)
            for (int o = 0; o < oc; o++)
            {
                float* d = dst + (o / panelWidth) * panelStride + (long)t * wide * panelWidth + o % panelWidth;
                for (int y = 0; y < g.OutHeight; y++)
                {
                    float* src = dy + (((long)t * oc + o) * g.OutHeight + y) * g.OutWidth;
                    float* row = d + (long)y * rowWidth * panelWidth;
                    for (int x = 0; x < g.OutWidth; x++) row[(long)x * panelWidth] = src[x];
                }
            }
    }
}
