using System.Diagnostics;

namespace ChatServer.LoadTest;

/// <summary>
/// <c>--aot</c>: the build the container ships. Publishes ChatServer with the Dockerfile's publish command (Native AOT,
/// linux-x64) into <c>ChatServer/bin/aot/</c> and returns the executable, so the figures are those of the image.
/// </summary>
internal static class NativeBuild
{
    public static async Task<string> PublishAsync(TextWriter log, CancellationToken cancellationToken)
    {
        var root = Options.RepositoryRoot() ?? throw new InvalidOperationException("--aot needs the repository (Chat.sln) above the tool.");
        var output = Path.Combine(root, "ChatServer", "bin", "aot");
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        foreach (var arg in new[] { "publish", "ChatServer/ChatServer.csproj", "-c", "Release", "-r", "linux-x64", "-o", output, "-nologo" })
        {
            info.ArgumentList.Add(arg);
        }

        await log.WriteLineAsync($"publishing Native AOT: dotnet {string.Join(' ', info.ArgumentList)}");
        using var publish = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var errors = publish.StandardError.ReadToEndAsync(cancellationToken);
        var messages = await publish.StandardOutput.ReadToEndAsync(cancellationToken);
        await publish.WaitForExitAsync(cancellationToken);
        if (publish.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish failed ({publish.ExitCode}):\n{messages}{await errors}");
        }

        return Path.Combine(output, "ChatServer");
    }
}
