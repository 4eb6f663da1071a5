using System.Buffers.Binary;
using System.Text;
using ResNetSharp.IO;

namespace ResNetSharp.Tests.IO;

public class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnet-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Path_(string name) => Path.Combine(_dir, name);

    [Fact]
    public void RoundTripsTensorsAndMetadata()
    {
        string path = Path_("a.safetensors");
        SafeTensors.Write(path, new Dictionary<string, SafeTensor>
        {
            ["w"] = SafeTensor.FromFloat32([1f, -2f, 3.5f, 0f, 5f, 6f], 2, 3),
            ["b"] = SafeTensor.FromFloat32([7f], 1),
        }, new Dictionary<string, string> { ["arch"] = "resnet20" });
        var c = SafeTensors.Read(path);
        Assert.Equal([1f, -2f, 3.5f, 0f, 5f, 6f], c.Tensors["w"].ToFloat32());
        Assert.Equal([2, 3], c.Tensors["w"].Shape);
        Assert.Equal("resnet20", c.Metadata["arch"]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void TruncatedFileNamesTheTensorAndTheSizes()
    {
        string path = Path_("t.safetensors");
        SafeTensors.Write(path, [new("w", SafeTensor.FromFloat32(new float[100], 100))]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^40]);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "shorter than the 8-byte header length")]
    [InlineData(new byte[] { 255, 255, 255, 255, 255, 255, 255, 127, 0, 0 }, "header length")]
    public void TinyOrHostileHeadersAreRejectedWithoutAllocating(byte[] content, string expected)
    {
        string path = Path_("h.safetensors");
        File.WriteAllBytes(path, content);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("{not json", "JSON header")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,4]}}", "needs 4000000000000 bytes")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8000000000]}}", "holds only")]
    [InlineData("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unsupported dtype 'Q7'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "invalid dimension")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "malformed entry")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "appears twice")]
    public void CorruptHeadersGetClearErrors(string header, string expected)
    {
        string path = Path_("c.safetensors");
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(expected, e.Message);
    }
}
