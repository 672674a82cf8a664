using System.Diagnostics;
using ChatServer.Tests.Conformance;

namespace ChatServer.Tests.Browser;

/// <summary>
/// The page's protocol module (<c>wwwroot/chat-client.js</c>) on its own: <c>chat-client.test.mjs</c> (next to this
/// file) drives its send queue, typing set and history, search and delete calls frame by frame under <c>node --test</c>, with
/// a fake socket and clock.
/// </summary>
public sealed class ChatClientScriptTests
{
    [Test, CancelAfter(60_000)]
    public async Task The_send_queue_and_the_typing_set_behave_frame_by_frame(CancellationToken cancellationToken)
    {
        RepositoryFiles.RequireTool(NodeWsDriver.NodePath, "node", "install Node.js 20 or later");
        var info = new ProcessStartInfo(NodeWsDriver.NodePath!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("--test");
        info.ArgumentList.Add(RepositoryFiles.PathOf("ChatServer.Tests/Browser/chat-client.test.mjs"));

        using var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start.");
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            Assert.That(process.ExitCode, Is.Zero, $"{await stdout}\n{await stderr}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
