using ResNetSharp.Data;

namespace ResNetSharp.Tests.Data;

/// <summary>Transforms against direct computations, and the loader's order, determinism and background preparation.</summary>
public class PipelineTests
{
    private static ImageSample Ramp(int c, int h, int w) =>
        new([.. Enumerable.Range(0, c * h * w).Select(i => (float)i)], c, h, w, 3);

    [Fact]
    public void CropPadsWithZerosAndCopiesTheWindow()
    {
        var x = Ramp(2, 3, 4);
        var y = Image.Crop(x, -1, 1, 3, 4);
        // Row 0 is padding; row 1 is source row 0 from column 1 on; the last column falls outside (zero).
        Assert.All(y.Pixels[..4], v => Assert.Equal(0f, v));
        Assert.Equal(new float[] { 1, 2, 3, 0 }, y.Pixels[4..8]);
        Assert.Equal(new float[] { 12 + 5, 12 + 6, 12 + 7, 0 }, y.Pixels[(12 + 8)..(12 + 12)]);
    }

    [Fact]
    public void FlipTwiceIsTheIdentityAndFlipMirrorsRows()
    {
        var x = Ramp(1, 2, 3);
        var f = Image.FlipHorizontal(x);
        Assert.Equal(new float[] { 2, 1, 0, 5, 4, 3 }, f.Pixels);
        Assert.Equal(x.Pixels, Image.FlipHorizontal(f).Pixels);
    }

    [Fact]
    public void BilinearResizeMatchesTorchOnAKnownCase()
    {
        // torch.nn.functional.interpolate(arange(4).view(1,1,2,2), size=(4,4), mode="bilinear", align_corners=False)
        var x = new ImageSample([0, 1, 2, 3], 1, 2, 2, 0);
        var y = Image.Resize(x, 4, 4);
        float[] torch = [0f, 0.25f, 0.75f, 1f, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2f, 2.25f, 2.75f, 3f];
        for (int i = 0; i < 16; i++) Assert.Equal(torch[i], y.Pixels[i], 5);
    }

    [Fact]
    public void RandomResizedCropGivesTheSizeAndIsReproducible()
    {
        var t = new RandomResizedCrop(8, 6);
        var x = Ramp(3, 20, 30);
        var r1 = SplitMix.For(1, 2, 3);
        var r2 = SplitMix.For(1, 2, 3);
        var a = t.Apply(x, ref r1);
        var b = t.Apply(x, ref r2);
        Assert.Equal((3, 8, 6), (a.Channels, a.Height, a.Width));
        Assert.Equal(a.Pixels, b.Pixels);
    }

    [Fact]
    public void ResizeKeepsAspectAndCenterCropCenters()
    {
        var rng = new SplitMix(0);
        var x = Ramp(1, 10, 20);
        var r = new Resize(5).Apply(x, ref rng);
        Assert.Equal((5, 10), (r.Height, r.Width));
        var c = new CenterCrop(2, 2).Apply(Ramp(1, 4, 4), ref rng);
        Assert.Equal(new float[] { 5, 6, 9, 10 }, c.Pixels);
    }

    [Fact]
    public void NormalizeUsesPerChannelMeanAndStd()
    {
        var rng = new SplitMix(0);
        var x = new ImageSample([1, 1, 3, 3], 2, 1, 2, 0);
        var y = new Normalize([1, 2], [1, 0.5f]).Apply(x, ref rng);
        Assert.Equal(new float[] { 0, 0, 2, 2 }, y.Pixels);
    }

    private static InMemoryDataset Numbers(int n) =>
        new([.. Enumerable.Range(0, n).Select(i => (byte)i)], [.. Enumerable.Range(0, n).Select(i => i % 3)], 1, 1, 1, ["a", "b", "c"], "numbers");

    [Fact]
    public void EveryImageOncePerEpochInAnOrderSetBySeedAndEpoch()
    {
        var loader = new DataLoader(Numbers(37), 8, 1, 1, 1, shuffle: true, seed: 5);
        var e0 = loader.Epoch(0).SelectMany(b => b.Indices).ToArray();
        var e1 = loader.Epoch(1).SelectMany(b => b.Indices).ToArray();
        Assert.Equal(Enumerable.Range(0, 37), e0.Order());
        Assert.Equal(Enumerable.Range(0, 37), e1.Order());
        Assert.NotEqual(e0, e1);
        Assert.Equal(e0, loader.Epoch(0).SelectMany(b => b.Indices));
        Assert.Equal(5, loader.BatchesPerEpoch);
        Assert.Equal(new[] { 8, 8, 8, 8, 5 }, loader.Epoch(0).Select(b => b.Count));
        // Pixel values follow their index: batches hold what they say they hold.
        foreach (var b in loader.Epoch(2))
            for (int i = 0; i < b.Count; i++) Assert.Equal(b.Indices[i] / 255f, b.Images.Span[i]);
    }

    [Fact]
    public void BatchesAreTheSameForAnyWorkerCountAndAugmentationIsSeeded()
    {
        var data = FashionMnist.LoadSample(train: false).Subset([.. Enumerable.Range(0, 70)]);
        var aug = new Compose(new RandomCrop(28, 28, 2), new RandomHorizontalFlip());
        float[] Run(int workers, int seed) =>
            [.. new DataLoader(data, 16, 1, 28, 28, aug, shuffle: true, seed: seed, dropLast: true, workers: workers)
                .Epoch(3).SelectMany(b => b.Images.Span.ToArray())];
        var one = Run(1, 7);
        Assert.Equal(4 * 16 * 784, one.Length);
        Assert.Equal(one, Run(3, 7));
        Assert.NotEqual(one, Run(1, 8));
    }

    [Fact]
    public void ResumingAtABatchGivesTheRemainingBatches()
    {
        var loader = new DataLoader(Numbers(30), 4, 1, 1, 1, shuffle: true, seed: 1, workers: 2);
        var all = loader.Epoch(4).Select(b => b.Indices).ToArray();
        var tail = loader.Epoch(4, firstBatch: 3).Select(b => b.Indices).ToArray();
        Assert.Equal(all[3..], tail);
    }

    [Fact]
    public void WorkerErrorsReachTheConsumerWithTheirMessage()
    {
        var loader = new DataLoader(Numbers(10), 4, 1, 2, 2);  // images are 1x1, the batch wants 2x2
        var e = Assert.Throws<InvalidDataException>(() => loader.Epoch(0).ToList());
        Assert.Contains("image 0 is 1x1x1 after the transforms, the batch needs 1x2x2", e.Message);
    }

    private sealed class CountingDataset(IDataset inner) : IDataset
    {
        private int _reads;
        public int Reads => Volatile.Read(ref _reads);
        public int Count => inner.Count;
        public IReadOnlyList<string> Classes => inner.Classes;
        public int Channels => inner.Channels;
        public string Source => inner.Source;
        public ImageSample Read(int index) { Interlocked.Increment(ref _reads); return inner.Read(index); }
    }

    [Fact]
    public void LeavingAnEpochEarlyStopsTheWorkers()
    {
        var data = new CountingDataset(Numbers(200));
        var loader = new DataLoader(data, 2, 1, 1, 1, workers: 2, prefetch: 2);
        var first = loader.Epoch(0).Take(2).ToList();  // disposing the enumerator cancels and joins the worker threads
        Assert.Equal(2, first.Count);
        int reads = data.Reads;
        Assert.InRange(reads, 4, 4 + 2 * 2 * 2);        // what was taken, plus at most the prefetched batches
        Thread.Sleep(100);
        Assert.Equal(reads, data.Reads);                 // nothing reads after the enumerator is gone
        Assert.Equal(3, loader.Epoch(0).Skip(1).First().Indices[1]);
    }
}
