using System.Diagnostics;
using System.Text.Json;

namespace ChatServer.Tests.Conformance;

/// <summary>
/// Runs <c>ws-driver.js</c> (next to this file) with <c>node</c> and the Node <c>ws</c> library that <c>npm ci --prefix
/// tools</c> installs with wscat: one connection, one scenario, every event it saw as a JSON line, read after it exits.
/// </summary>
internal static class NodeWsDriver
{
    internal static string? NodePath =>
        new[] { Environment.GetEnvironmentVariable("CHAT_TEST_NODE"), "/usr/bin/node", "/usr/local/bin/node" }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "node")))
            .FirstOrDefault(File.Exists);

    private static string ModulesPath => RepositoryFiles.PathOf("tools/node_modules");

    private static string ScriptPath => RepositoryFiles.PathOf("ChatServer.Tests/Conformance/ws-driver.js");

    /// <summary>Fails in CI (inconclusive elsewhere) when node or the ws library is missing, as the wscat tests do.</summary>
    public static void Require()
    {
        RepositoryFiles.RequireTool(NodePath, "node", "install Node.js 18 or later");
        RepositoryFiles.RequireTool(Path.Combine(ModulesPath, "ws", "package.json"), "the Node ws library", "run npm ci --prefix tools");
        RepositoryFiles.RequireTool(ScriptPath, "ws-driver.js", "restore ChatServer.Tests/Conformance/ws-driver.js");
    }

    /// <summary>Runs a scenario to its end (the driver exits once the connection is closed) and returns what it printed.</summary>
    public static async Task<WsRun> RunAsync(Uri uri, string scenario, object args, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(NodePath!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(ScriptPath);
        info.ArgumentList.Add(uri.ToString());
        info.ArgumentList.Add(scenario);
        info.ArgumentList.Add(JsonSerializer.Serialize(args));
        info.Environment["NODE_PATH"] = ModulesPath;

        using var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start.");
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return new WsRun(process.ExitCode, [.. lines.Select(l => JsonDocument.Parse(l).RootElement.Clone())], await stderr);
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

/// <summary>What one driver run printed, in order.</summary>
internal sealed record WsRun(int ExitCode, IReadOnlyList<JsonElement> Events, string Stderr)
{
    public IEnumerable<JsonElement> Of(string kind) => Events.Where(e => e.GetProperty("event").GetString() == kind);

    /// <summary>The text messages, parsed as protocol frames.</summary>
    public IReadOnlyList<Frame> Messages =>
        [.. Of("message").Where(e => !e.GetProperty("binary").GetBoolean()).Select(e => new Frame(e.GetProperty("data").GetString()!))];

    /// <summary>The code and reason of ws's 'close' event (emitted once the TCP connection is gone).</summary>
    public (int Code, string Reason) Close =>
        Of("close").Select(e => (e.GetProperty("code").GetInt32(), e.GetProperty("reason").GetString()!)).Single();

    public IReadOnlyList<string> Kinds => [.. Events.Select(e => e.GetProperty("event").GetString()!)];

    public override string ToString() =>
        $"exit {ExitCode}; events: {string.Join(" | ", Events.Select(e => e.GetRawText()))}; stderr: {Stderr}";
}
