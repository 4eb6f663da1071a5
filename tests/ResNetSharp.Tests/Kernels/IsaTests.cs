using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace ResNetSharp.Tests.Kernels;

/// <summary>
/// Every fast path again, in a child process (ResNetSharp.KernelCheck) with the wider ISAs switched off, so the
/// Vector256 and Vector128 kernels are tested on this AVX-512 machine too.
/// </summary>
public class IsaTests
{
    public static TheoryData<string, string, string> Configurations() => new()
    {
        // name, environment (KEY=VALUE;...), the kernel that must run
        { "native", "", Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "Vector128" },
        { "no AVX-512", "DOTNET_EnableAVX512=0;DOTNET_EnableAVX512F=0", Vector256.IsHardwareAccelerated ? "Vector256" : "Vector128" },
        { "no AVX", "DOTNET_EnableAVX512=0;DOTNET_EnableAVX512F=0;DOTNET_EnableAVX2=0;DOTNET_EnableAVX=0", "Vector128" },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public async Task KernelsAgreeWithReference(string name, string environment, string expectedIsa)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ResNetSharp.KernelCheck.dll"));
        foreach (var pair in environment.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=');
            psi.Environment[kv[0]] = kv[1];
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(timeout.Token);
        string output = await stdout + await stderr;
        Assert.Contains($"isa={expectedIsa}", output);
        Assert.True(p.ExitCode == 0, $"{name}: {output}");
        Assert.Contains("all kernels agree", output);
    }
}
