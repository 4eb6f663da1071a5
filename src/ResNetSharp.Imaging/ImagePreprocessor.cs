using ResNetSharp.Models;
using ResNetSharp.Tensors;
using SkiaSharp;

namespace ResNetSharp.Imaging;

/// <summary>
/// Turns decoded images into a model's input, as <see cref="Preprocessing"/> describes: resize (shorter side to
/// <see cref="Preprocessing.ResizeShorter"/>, keeping the aspect ratio, then a centre crop of Height x Width; or straight
/// to Height x Width when ResizeShorter is null), channels (RGB, BGR or ITU-R 601 luma), then
/// (raw * PixelScale - mean) / std with raw the 0..255 value. Resizing uses Skia's Mitchell cubic filter.
/// </summary>
public sealed class ImagePreprocessor
{
    public ImagePreprocessor(Preprocessing preprocessing)
    {
        preprocessing.Validate();
        Preprocessing = preprocessing;
    }

    public Preprocessing Preprocessing { get; }
    public int Channels => Preprocessing.Channels;
    public int Height => Preprocessing.Height;
    public int Width => Preprocessing.Width;
    /// <summary>Floats per image: C*H*W.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>One image as CHW floats.</summary>
    public float[] Preprocess(DecodedImage image)
    {
        var chw = new float[ImageSize];
        Fill(image, chw);
        return chw;
    }

    /// <summary>A [N, C, H, W] batch of images already preprocessed by <see cref="Preprocess"/>.</summary>
    public Tensor<float> Batch(IReadOnlyList<float[]> images)
    {
        var t = new Tensor<float>(images.Count, Channels, Height, Width);
        for (int i = 0; i < images.Count; i++)
        {
            if (images[i].Length != ImageSize) throw new ArgumentException($"image {i} has {images[i].Length} values, expected {ImageSize}");
            images[i].CopyTo(t.Span.Slice(i * ImageSize, ImageSize));
        }
        return t;
    }

    /// <summary>Writes the preprocessed image into <paramref name="chw"/> (length C*H*W).</summary>
    public void Fill(DecodedImage image, Span<float> chw)
    {
        if (chw.Length != ImageSize) throw new ArgumentException($"destination has {chw.Length} values, expected {ImageSize}");
        var p = Preprocessing;
        // Resized size before the crop. torchvision's Resize(int) scales the shorter side to exactly R and the
        // longer to int(R * long / short) (truncation).
        int rw, rh;
        if (p.ResizeShorter is int r)
        {
            if (image.Width <= image.Height) { rw = r; rh = (int)((long)r * image.Height / image.Width); }
            else { rh = r; rw = (int)((long)r * image.Width / image.Height); }
            rw = Math.Max(rw, 1); rh = Math.Max(rh, 1);
        }
        else (rw, rh) = (p.Width, p.Height);
        var resized = rw == image.Width && rh == image.Height ? image : Resize(image, rw, rh);

        // Centre crop as torchvision's CenterCrop: offset round((size - crop) / 2); outside the image reads zeros
        // (CenterCrop pads with 0 when the crop is larger).
        int top = (int)Math.Round((rh - p.Height) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((rw - p.Width) / 2.0, MidpointRounding.ToEven);
        int plane = p.Height * p.Width;
        Span<float> scale = stackalloc float[3], shift = stackalloc float[3];
        for (int c = 0; c < p.Channels; c++)
        {
            // (raw * s - mean) / std == raw * (s / std) - mean / std
            scale[c] = p.PixelScale / p.Std[c];
            shift[c] = p.Mean[c] / p.Std[c];
        }
        var src = resized.Rgba;
        for (int y = 0; y < p.Height; y++)
        {
            int sy = y + top;
            for (int x = 0; x < p.Width; x++)
            {
                int sx = x + left;
                float rr = 0, gg = 0, bb = 0;
                if ((uint)sy < (uint)rh && (uint)sx < (uint)rw)
                {
                    int o = (sy * rw + sx) * 4;
                    rr = src[o]; gg = src[o + 1]; bb = src[o + 2];
                }
                int d = y * p.Width + x;
                if (p.Channels == 1)
                {
                    // ITU-R 601-2 luma, as PIL's convert("L") (without its rounding to an integer).
                    float l = rr * 0.299f + gg * 0.587f + bb * 0.114f;
                    chw[d] = l * scale[0] - shift[0];
                }
                else
                {
                    if (p.Bgr) (rr, bb) = (bb, rr);
                    chw[d] = rr * scale[0] - shift[0];
                    chw[plane + d] = gg * scale[1] - shift[1];
                    chw[2 * plane + d] = bb * scale[2] - shift[2];
                }
            }
        }
    }

    /// <summary>Resizes with Skia's Mitchell cubic (B = C = 1/3) into RGBA8888 unpremultiplied.</summary>
    public static DecodedImage Resize(DecodedImage image, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"cannot resize to {width}x{height}");
        var srcInfo = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var dstInfo = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var dst = new byte[checked((long)width * height * 4)];
        unsafe
        {
            fixed (byte* s = image.Rgba)
            fixed (byte* d = dst)
            {
                using var srcMap = new SKPixmap(srcInfo, (IntPtr)s, image.Width * 4);
                using var dstMap = new SKPixmap(dstInfo, (IntPtr)d, width * 4);
                if (!srcMap.ScalePixels(dstMap, new SKSamplingOptions(SKCubicResampler.Mitchell)))
                    throw new InvalidOperationException($"Skia could not resize {image.Width}x{image.Height} to {width}x{height}");
            }
        }
        return new DecodedImage(dst, width, height);
    }
}
