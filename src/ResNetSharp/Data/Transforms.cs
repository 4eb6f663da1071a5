namespace ResNetSharp.Data;

/// <summary>
/// One step of the data pipeline. Random transforms draw only from the generator they are handed, which the
/// loader keys by (seed, epoch, sample), so augmentation is reproducible whatever the thread scheduling.
/// </summary>
public interface ITransform
{
    ImageSample Apply(ImageSample image, ref SplitMix rng);
}

/// <summary>Transforms applied in order.</summary>
public sealed class Compose(params ITransform[] steps) : ITransform
{
    public IReadOnlyList<ITransform> Steps { get; } = steps;

    public ImageSample Apply(ImageSample image, ref SplitMix rng)
    {
        foreach (var t in Steps) image = t.Apply(image, ref rng);
        return image;
    }
}

/// <summary>Zero-pads each side by <paramref name="padding"/>, then crops a random Height x Width window (CIFAR's augmentation).</summary>
public sealed class RandomCrop(int height, int width, int padding) : ITransform
{
    public ImageSample Apply(ImageSample x, ref SplitMix rng)
    {
        int ph = x.Height + 2 * padding, pw = x.Width + 2 * padding;
        if (ph < height || pw < width) throw new ArgumentException($"RandomCrop: a {x.Height}x{x.Width} image padded by {padding} is smaller than {height}x{width}");
        int top = rng.NextInt(0, ph - height) - padding, left = rng.NextInt(0, pw - width) - padding;
        return Image.Crop(x, top, left, height, width);
    }
}

/// <summary>Mirrors left-right with probability <paramref name="p"/>.</summary>
public sealed class RandomHorizontalFlip(double p = 0.5) : ITransform
{
    public ImageSample Apply(ImageSample x, ref SplitMix rng) => rng.NextDouble() < p ? Image.FlipHorizontal(x) : x;
}

/// <summary>
/// torchvision's RandomResizedCrop: a window of random area fraction in <c>scale</c> and aspect ratio in
/// <c>ratio</c> (log-uniform), resized to Height x Width; after 10 failed draws, a centre crop of clamped ratio.
/// </summary>
public sealed class RandomResizedCrop(int height, int width, double minScale = 0.08, double maxScale = 1.0,
    double minRatio = 3.0 / 4, double maxRatio = 4.0 / 3) : ITransform
{
    public ImageSample Apply(ImageSample x, ref SplitMix rng)
    {
        double area = (double)x.Height * x.Width;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (minScale + (maxScale - minScale) * rng.NextDouble());
            double logLo = Math.Log(minRatio), logHi = Math.Log(maxRatio);
            double ratio = Math.Exp(logLo + (logHi - logLo) * rng.NextDouble());
            int w = (int)Math.Round(Math.Sqrt(target * ratio)), h = (int)Math.Round(Math.Sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= x.Width && h <= x.Height)
            {
                int top = rng.NextInt(0, x.Height - h), left = rng.NextInt(0, x.Width - w);
                return Image.Resize(Image.Crop(x, top, left, h, w), height, width);
            }
        }
        double inRatio = (double)x.Width / x.Height;
        int cw, ch;
        if (inRatio < minRatio) { cw = x.Width; ch = (int)Math.Round(cw / minRatio); }
        else if (inRatio > maxRatio) { ch = x.Height; cw = (int)Math.Round(ch * maxRatio); }
        else { cw = x.Width; ch = x.Height; }
        return Image.Resize(Image.Crop(x, (x.Height - ch) / 2, (x.Width - cw) / 2, ch, cw), height, width);
    }
}

/// <summary>Resizes so that the shorter side is <paramref name="shorter"/> (bilinear), keeping the aspect ratio.</summary>
public sealed class Resize(int shorter) : ITransform
{
    public ImageSample Apply(ImageSample x, ref SplitMix rng)
    {
        if (Math.Min(x.Height, x.Width) == shorter) return x;
        var (h, w) = x.Height <= x.Width
            ? (shorter, Math.Max(1, (int)((long)shorter * x.Width / x.Height)))
            : (Math.Max(1, (int)((long)shorter * x.Height / x.Width)), shorter);
        return Image.Resize(x, h, w);
    }
}

/// <summary>Crops the central Height x Width window (zero-padding images smaller than it).</summary>
public sealed class CenterCrop(int height, int width) : ITransform
{
    public ImageSample Apply(ImageSample x, ref SplitMix rng) =>
        x.Height == height && x.Width == width ? x : Image.Crop(x, (int)Math.Round((x.Height - height) / 2.0), (int)Math.Round((x.Width - width) / 2.0), height, width);
}

/// <summary>(x - mean) / std per channel.</summary>
public sealed class Normalize(float[] mean, float[] std) : ITransform
{
    public IReadOnlyList<float> Mean { get; } = mean;
    public IReadOnlyList<float> Std { get; } = std;

    public ImageSample Apply(ImageSample x, ref SplitMix rng)
    {
        if (mean.Length != x.Channels || std.Length != x.Channels)
            throw new ArgumentException($"Normalize: {mean.Length} means and {std.Length} stds for a {x.Channels}-channel image");
        var o = new float[x.Pixels.Length];
        int plane = x.Height * x.Width;
        for (int c = 0; c < x.Channels; c++)
        {
            float m = mean[c], inv = 1f / std[c];
            for (int i = c * plane; i < (c + 1) * plane; i++) o[i] = (x.Pixels[i] - m) * inv;
        }
        return x with { Pixels = o };
    }
}

/// <summary>Pixel-level operations on CHW float images.</summary>
public static class Image
{
    /// <summary>The window at (top, left) of size h x w; parts outside the image are zero.</summary>
    public static ImageSample Crop(ImageSample x, int top, int left, int h, int w)
    {
        var o = new float[x.Channels * h * w];
        for (int c = 0; c < x.Channels; c++)
            for (int y = 0; y < h; y++)
            {
                int sy = top + y;
                if ((uint)sy >= (uint)x.Height) continue;
                int x0 = Math.Max(0, -left), x1 = Math.Min(w, x.Width - left);
                if (x1 <= x0) continue;
                x.Pixels.AsSpan((c * x.Height + sy) * x.Width + left + x0, x1 - x0).CopyTo(o.AsSpan((c * h + y) * w + x0));
            }
        return x with { Pixels = o, Height = h, Width = w };
    }

    public static ImageSample FlipHorizontal(ImageSample x)
    {
        var o = new float[x.Pixels.Length];
        for (int row = 0; row < x.Channels * x.Height; row++)
        {
            int b = row * x.Width;
            for (int i = 0; i < x.Width; i++) o[b + i] = x.Pixels[b + x.Width - 1 - i];
        }
        return x with { Pixels = o };
    }

    /// <summary>Bilinear resize with half-pixel centres (torchvision's antialias=False, align_corners=False).</summary>
    public static ImageSample Resize(ImageSample x, int h, int w)
    {
        if (h == x.Height && w == x.Width) return x;
        var o = new float[x.Channels * h * w];
        float sy = (float)x.Height / h, sx = (float)x.Width / w;
        for (int y = 0; y < h; y++)
        {
            float fy = Math.Max(0, (y + 0.5f) * sy - 0.5f);
            int y0 = Math.Min((int)fy, x.Height - 1), y1 = Math.Min(y0 + 1, x.Height - 1);
            float wy = fy - y0;
            for (int xx = 0; xx < w; xx++)
            {
                float fx = Math.Max(0, (xx + 0.5f) * sx - 0.5f);
                int x0 = Math.Min((int)fx, x.Width - 1), x1 = Math.Min(x0 + 1, x.Width - 1);
                float wx = fx - x0;
                for (int c = 0; c < x.Channels; c++)
                {
                    int b = c * x.Height * x.Width;
                    float top = x.Pixels[b + y0 * x.Width + x0] * (1 - wx) + x.Pixels[b + y0 * x.Width + x1] * wx;
                    float bot = x.Pixels[b + y1 * x.Width + x0] * (1 - wx) + x.Pixels[b + y1 * x.Width + x1] * wx;
                    o[(c * h + y) * w + xx] = top * (1 - wy) + bot * wy;
                }
            }
        }
        return x with { Pixels = o, Height = h, Width = w };
    }
}
