using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChatServer.LoadTest;

/// <summary>
/// What the tool started itself: a <c>redis-server</c> on a free loopback port and ChatServer instances from the built
/// <c>ChatServer.dll</c>, each a child process stopped by its process id when the run ends.
/// </summary>
internal sealed class LocalProcesses : IAsyncDisposable
{
    private readonly List<Process> _started = [];
    private readonly TextWriter _log;

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
    /// the time from process start to the first 200 is its cold start.
    /// </summary>
    public async Task StartServersAsync(int count, string serverDll, string redis, IReadOnlyDictionary<string, string> environment,
        CancellationToken cancellationToken)
    {
        var pending = new List<Task<StartedServer>>();
        for (var i = 0; i < count; i++)
        {
            pending.Add(StartServerAsync(serverDll, redis, environment, cancellationToken));
        }

        Servers.AddRange(await Task.WhenAll(pending));
    }

    private async Task<StartedServer> StartServerAsync(string serverDll, string redis, IReadOnlyDictionary<string, string> environment,
        CancellationToken cancellationToken)
    {
        var port = FreePort();
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(serverDll);
        info.Environment["PORT"] = Invariant(port);
        info.Environment["Redis__Configuration"] = redis;
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

        var clock = Stopwatch.StartNew();
        var process = Start(info);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var ready = new Uri($"http://127.0.0.1:{port}/readyz");
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"ChatServer (pid {process.Id}) exited with {process.ExitCode} before it was ready.");
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
                throw new InvalidOperationException($"ChatServer (pid {process.Id}) was not ready within 60 s.");
            }

            await Task.Delay(5, cancellationToken);
        }

        var server = new StartedServer(process.Id, new Uri($"ws://127.0.0.1:{port}/ws"), clock.Elapsed.TotalMilliseconds);
        await _log.WriteLineAsync($"ChatServer pid {server.ProcessId} on {server.Url} ready after {server.ColdStartMs:F0} ms");
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
