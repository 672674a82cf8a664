using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChatServer.LoadTest;

/// <summary>
/// What the tool started itself: a <c>redis-server</c> on a free loopback port, ChatServer instances (the built
/// <c>ChatServer.dll</c> under <c>dotnet</c>, or a native executable such as the Native AOT publish output; the same
/// for a <c>--baseline-exe</c>/<c>--baseline-dll</c> build) and, for <c>--peer</c>, instances of the Node and Bun
/// peers; each a child process stopped by its process id when the run ends (or when <see cref="StopServersAsync"/>
/// makes room for the next implementation).
/// </summary>
internal sealed class LocalProcesses : IAsyncDisposable
{
    private readonly List<Process> _started = [];
    private readonly List<string> _temporaryFolders = [];
    private readonly TextWriter _log;
    private readonly Dictionary<string, LaidOutPeer> _peers = [];

    public LocalProcesses(TextWriter log) => _log = log;

    public int RedisPort { get; private set; }

    public int? RedisProcessId { get; private set; }

    public List<StartedServer> Servers { get; } = [];

    /// <summary>Starts redis-server (persistence off) and waits until it answers PING.</summary>
    public async Task StartRedisAsync(CancellationToken cancellationToken)
    {
        RedisPort = FreePort();
        var info = new ProcessStartInfo("redis-server") { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (var arg in new[] { "--port", Invariant(RedisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--protected-mode", "no", "--loglevel", "warning" })
        {
            info.ArgumentList.Add(arg);
        }

        var process = Start(info);
        RedisProcessId = process.Id;
        var deadline = Stopwatch.StartNew();
        while (!await PingRedisAsync(RedisPort, cancellationToken))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(20) || process.HasExited)
            {
                throw new InvalidOperationException("redis-server did not answer PING.");
            }

            await Task.Delay(20, cancellationToken);
        }

        await _log.WriteLineAsync($"redis-server pid {process.Id} on 127.0.0.1:{RedisPort}");
    }

    /// <summary>
    /// Starts <paramref name="count"/> instances on free ports, all at once, and waits for each one's <c>/readyz</c>;
    /// the time from process start to the first 200 is its cold start. <paramref name="server"/> is a
    /// <c>ChatServer.dll</c> (run with <c>dotnet</c>) or a native executable; <paramref name="redis"/> <c>null</c>
    /// starts them on the in-process bus. <paramref name="name"/> is what the progress lines call them (the baseline
    /// build is started by this same method, so exactly as ours).
    /// </summary>
    public async Task StartServersAsync(int count, string server, string? redis, IReadOnlyDictionary<string, string> environment,
        CancellationToken cancellationToken, string name = "ChatServer")
    {
        var pending = new List<Task<StartedServer>>();
        for (var i = 0; i < count; i++)
        {
            pending.Add(StartServerAsync(server, redis, environment, name, cancellationToken));
        }

        Servers.AddRange(await Task.WhenAll(pending));
    }

    private Task<StartedServer> StartServerAsync(string server, string? redis, IReadOnlyDictionary<string, string> environment, string name,
        CancellationToken cancellationToken)
    {
        var port = FreePort();
        var managed = server.EndsWith(".dll", StringComparison.OrdinalIgnoreCase);
        var info = new ProcessStartInfo(managed ? "dotnet" : server)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (managed)
        {
            info.ArgumentList.Add(server);
        }

        info.Environment["PORT"] = Invariant(port);
        if (redis is null)
        {
            foreach (var inherited in new[] { "Redis__Configuration", "REDISHOST", "REDISPORT" })
            {
                info.Environment.Remove(inherited);
            }
        }
        else
        {
            info.Environment["Redis__Configuration"] = redis;
        }

        info.Environment["Logging__LogLevel__Default"] = "Warning";
        // Load runs send far above a person's rate from each connection, and open more than the default cap.
        info.Environment["Chat__RateLimitPerSecond"] = "100000";
        info.Environment["Chat__RateLimitBurst"] = "100000";
        info.Environment["Chat__MaxConnections"] = "100000";
        info.Environment["Chat__OutgoingQueueCapacity"] = "4096";
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        return StartAndWaitUntilReadyAsync(info, port, name, cancellationToken);
    }

    /// <summary>
    /// Lays <paramref name="peer"/> out in a temporary folder (its source folder may be read-only), installs it with
    /// <c>npm ci</c> from its lock file (once per run), and starts <paramref name="count"/> instances on this tool's
    /// Redis, all at once: the Node peer with <c>node server.js</c>, the Bun peer with the <c>bun</c> binary its own
    /// install brought (<see cref="LayOutPeerAsync"/>).
    /// </summary>
    public async Task StartPeersAsync(int count, PeerServer peer, CancellationToken cancellationToken)
    {
        if (!_peers.TryGetValue(peer.Key, out var laidOut))
        {
            laidOut = await LayOutPeerAsync(peer, cancellationToken);
            _peers[peer.Key] = laidOut;
        }

        var pending = new List<Task<StartedServer>>();
        for (var i = 0; i < count; i++)
        {
            var port = FreePort();
            var info = new ProcessStartInfo(laidOut.Executable)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = laidOut.Directory,
            };
            info.ArgumentList.Add(Path.Combine(laidOut.Directory, "server.js"));
            info.Environment["PORT"] = Invariant(port);
            info.Environment["HOST"] = "127.0.0.1";
            info.Environment["REDIS_URL"] = $"redis://127.0.0.1:{RedisPort}";
            info.Environment["HISTORY_LENGTH"] = "100";   // ChatServer's default Chat:HistoryLength
            pending.Add(StartAndWaitUntilReadyAsync(info, port, $"{peer.Name} peer", cancellationToken));
        }

        Servers.AddRange(await Task.WhenAll(pending));
    }

    /// <summary>Stops the servers started so far (not Redis), so the next implementation has the cores to itself.</summary>
    public async Task StopServersAsync()
    {
        foreach (var server in Servers)
        {
            var process = _started.Single(p => p.Id == server.ProcessId);
            _started.Remove(process);
            if (!process.HasExited)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        Servers.Clear();
    }

    private async Task<LaidOutPeer> LayOutPeerAsync(PeerServer peer, CancellationToken cancellationToken)
    {
        var source = peer.Directory;
        if (!File.Exists(Path.Combine(source, "server.js")) || !File.Exists(Path.Combine(source, "package-lock.json")))
        {
            throw new InvalidOperationException(
                $"No {peer.Name} peer at {source} (server.js and package-lock.json); give --{peer.Key}-dir.");
        }

        var target = Directory.CreateTempSubdirectory($"chat-peer-{peer.Key}-").FullName;
        _temporaryFolders.Add(target);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(source, file);
            if (relative.StartsWith("node_modules", StringComparison.Ordinal))
            {
                continue;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(target, relative))!);
            File.Copy(file, Path.Combine(target, relative));
        }

        await NpmAsync(target, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], peer, cancellationToken);
        var executable = peer.Runtime == PeerRuntime.Node ? "node" : await BunExecutableAsync(target, peer, cancellationToken);
        await _log.WriteLineAsync($"{peer.Name} peer laid out in {target} (npm ci done), started with {executable}");
        return new LaidOutPeer(target, executable);
    }

    /// <summary>
    /// The Bun binary of the peer's own install: <c>node_modules/.bin/bun</c>, which bun's postinstall makes the real
    /// executable (so the process id read for CPU and RSS is Bun's, not a launcher's). Without AVX2 that build does not
    /// run and the same version's <c>-baseline</c> package is added.
    /// </summary>
    private async Task<string> BunExecutableAsync(string folder, PeerServer peer, CancellationToken cancellationToken)
    {
        var modules = Path.Combine(folder, "node_modules");
        string[] candidates = [Path.Combine(modules, ".bin", "bun"), Path.Combine(modules, "@oven", "bun-linux-x64", "bin", "bun")];
        if (OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo")
            && !(await File.ReadAllTextAsync("/proc/cpuinfo", cancellationToken)).Contains(" avx2", StringComparison.Ordinal))
        {
            using var package = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(modules, "bun", "package.json"), cancellationToken));
            var version = package.RootElement.GetProperty("version").GetString();
            await _log.WriteLineAsync($"no AVX2 on this CPU: adding @oven/bun-linux-x64-baseline@{version} to the {peer.Name} peer");
            await NpmAsync(folder, ["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", $"@oven/bun-linux-x64-baseline@{version}"],
                peer, cancellationToken);
            candidates = [Path.Combine(modules, "@oven", "bun-linux-x64-baseline", "bin", "bun")];
        }

        foreach (var candidate in candidates)
        {
            if (IsElf(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"No Bun executable in {modules} after npm ci (looked at {string.Join(", ", candidates)}).");
    }

    private static bool IsElf(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var file = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return file.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("\u007FELF"u8);
    }

    private static async Task NpmAsync(string folder, string[] arguments, PeerServer peer, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("npm") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder };
        foreach (var arg in arguments)
        {
            info.ArgumentList.Add(arg);
        }

        using var npm = Process.Start(info) ?? throw new InvalidOperationException("npm did not start.");
        var errors = npm.StandardError.ReadToEndAsync(cancellationToken);
        await npm.StandardOutput.ReadToEndAsync(cancellationToken);
        await npm.WaitForExitAsync(cancellationToken);
        if (npm.ExitCode != 0)
        {
            throw new InvalidOperationException($"npm {arguments[0]} for the {peer.Name} peer failed ({npm.ExitCode}): {await errors}");
        }
    }

    private async Task<StartedServer> StartAndWaitUntilReadyAsync(ProcessStartInfo info, int port, string name, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var process = Start(info);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var ready = new Uri($"http://127.0.0.1:{port}/readyz");
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{name} (pid {process.Id}) exited with {process.ExitCode} before it was ready.");
            }

            try
            {
                using var response = await http.GetAsync(ready, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new InvalidOperationException($"{name} (pid {process.Id}) was not ready within 60 s.");
            }

            await Task.Delay(5, cancellationToken);
        }

        var server = new StartedServer(process.Id, new Uri($"ws://127.0.0.1:{port}/ws"), clock.Elapsed.TotalMilliseconds);
        await _log.WriteLineAsync($"{name} pid {server.ProcessId} on {server.Url} ready after {server.ColdStartMs:F0} ms");
        return server;
    }

    /// <summary>Kills, by process id, exactly the processes this instance started.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var process in _started)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill();
                    await process.WaitForExitAsync();
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            process.Dispose();
        }

        _started.Clear();
        foreach (var folder in _temporaryFolders)
        {
            Directory.Delete(folder, recursive: true);
        }

        _temporaryFolders.Clear();
    }

    private Process Start(ProcessStartInfo info)
    {
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{info.FileName} did not start.");
        _started.Add(process);
        if (info.RedirectStandardOutput)
        {
            process.OutputDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
        }

        if (info.RedirectStandardError)
        {
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    _log.WriteLine($"[pid {process.Id}] {line}");
                }
            };
            process.BeginErrorReadLine();
        }

        return process;
    }

    private static async Task<bool> PingRedisAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer, cancellationToken);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}

internal sealed record StartedServer(int ProcessId, Uri Url, double ColdStartMs);

/// <summary>A peer copied to <paramref name="Directory"/> and installed there; started as <c>Executable server.js</c>.</summary>
internal sealed record LaidOutPeer(string Directory, string Executable);
