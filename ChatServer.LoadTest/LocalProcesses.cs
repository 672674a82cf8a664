using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChatServer.LoadTest;

/// <summary>
/// What the tool started itself: a <c>redis-server</c> on a free loopback port, ChatServer instances (the built
/// <c>ChatServer.dll</c> under <c>dotnet</c>, or a native executable such as the Native AOT publish output) and, for <c>--peer</c>, instances of the Node peer; each a child process stopped by its process
/// id when the run ends (or when <see cref="StopServersAsync"/> makes room for the next implementation).
/// </summary>
internal sealed class LocalProcesses : IAsyncDisposable
{
    private readonly List<Process> _started = [];
    private readonly List<string> _temporaryFolders = [];
    private readonly TextWriter _log;
    private string? _peerDirectory;

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
    /// starts them on the in-process bus.
    /// </summary>
    public async Task StartServersAsync(int count, string server, string? redis, IReadOnlyDictionary<string, string> environment,
        CancellationToken cancellationToken)
    {
        var pending = new List<Task<StartedServer>>();
        for (var i = 0; i < count; i++)
        {
            pending.Add(StartServerAsync(server, redis, environment, cancellationToken));
        }

        Servers.AddRange(await Task.WhenAll(pending));
    }

    private Task<StartedServer> StartServerAsync(string server, string? redis, IReadOnlyDictionary<string, string> environment,
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

        return StartAndWaitUntilReadyAsync(info, port, "ChatServer", cancellationToken);
    }

    /// <summary>
    /// Lays the Node peer out in a temporary folder (its source folder may be read-only), installs it with
    /// <c>npm ci</c> from its lock file, and starts <paramref name="count"/> instances on this tool's Redis, all at once.
    /// </summary>
    public async Task StartPeersAsync(int count, string peerDirectory, CancellationToken cancellationToken)
    {
        _peerDirectory ??= await LayOutPeerAsync(peerDirectory, cancellationToken);
        var pending = new List<Task<StartedServer>>();
        for (var i = 0; i < count; i++)
        {
            var port = FreePort();
            var info = new ProcessStartInfo("node") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(Path.Combine(_peerDirectory, "server.js"));
            info.Environment["PORT"] = Invariant(port);
            info.Environment["HOST"] = "127.0.0.1";
            info.Environment["REDIS_URL"] = $"redis://127.0.0.1:{RedisPort}";
            info.Environment["HISTORY_LENGTH"] = "100";   // ChatServer's default Chat:HistoryLength
            pending.Add(StartAndWaitUntilReadyAsync(info, port, "node peer", cancellationToken));
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

    private async Task<string> LayOutPeerAsync(string source, CancellationToken cancellationToken)
    {
        if (!File.Exists(Path.Combine(source, "server.js")) || !File.Exists(Path.Combine(source, "package-lock.json")))
        {
            throw new InvalidOperationException($"No Node peer at {source} (server.js and package-lock.json); give --peer-dir.");
        }

        var target = Directory.CreateTempSubdirectory("chat-peer-").FullName;
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

        var info = new ProcessStartInfo("npm") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = target };
        foreach (var arg in new[] { "ci", "--no-audit", "--no-fund", "--loglevel=error" })
        {
            info.ArgumentList.Add(arg);
        }

        using var npm = Process.Start(info) ?? throw new InvalidOperationException("npm did not start.");
        var errors = npm.StandardError.ReadToEndAsync(cancellationToken);
        await npm.StandardOutput.ReadToEndAsync(cancellationToken);
        await npm.WaitForExitAsync(cancellationToken);
        if (npm.ExitCode != 0)
        {
            throw new InvalidOperationException($"npm ci for the peer failed ({npm.ExitCode}): {await errors}");
        }

        await _log.WriteLineAsync($"node peer laid out in {target} (npm ci done)");
        return target;
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
