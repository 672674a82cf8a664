using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace ChatServer.LoadTest;

internal sealed record IdleSettings(Uri Url, int Connections, int Rooms, int SourceAddresses = 8, int ConnectConcurrency = 64,
    double SettleSeconds = 5, double AtRestSeconds = 0);

/// <summary>
/// Opens N signed-in connections over K rooms to one instance and leaves them idle, measuring the server's resident
/// memory before and after. Connections come from several loopback source addresses (127.0.0.1, .2, ...) so ten
/// thousand of them never run out of ephemeral ports towards the one server port.
/// </summary>
internal sealed class IdleRunner(IdleSettings settings, int? serverProcessId, TextWriter progress)
{
    public async Task<IdleResult> RunAsync(CancellationToken cancellationToken)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var nextSource = 0;
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, token) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    var source = Interlocked.Increment(ref nextSource) % settings.SourceAddresses + 1;
                    socket.Bind(new IPEndPoint(new IPAddress([127, 0, 0, (byte)source]), 0));
                    await socket.ConnectAsync(context.DnsEndPoint, token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var invoker = new HttpMessageInvoker(handler);

        // Warm up first (JIT, pools, the first room's subscription), so the baseline holds what every server holds.
        var warm = await OpenAsync(invoker, $"lt-{run}-warm", 0, 20, cancellationToken);
        await CloseAllAsync(warm);
        await Task.Delay(TimeSpan.FromSeconds(settings.SettleSeconds), cancellationToken);
        var rssBefore = serverProcessId is { } pid ? ProcStats.RssBytes(pid) : (long?)null;

        var clock = Stopwatch.StartNew();
        var sockets = await OpenAsync(invoker, $"lt-{run}", settings.Rooms, settings.Connections, cancellationToken);
        var openSeconds = clock.Elapsed.TotalSeconds;
        await progress.WriteLineAsync($"idle: {sockets.Count} connections signed in over {settings.Rooms} rooms in {openSeconds:F1} s; settling");
        await Task.Delay(TimeSpan.FromSeconds(settings.SettleSeconds), cancellationToken);
        var rssAfter = serverProcessId is { } pid2 ? ProcStats.RssBytes(pid2) : (long?)null;
        double? atRestPercent = null;
        if (settings.AtRestSeconds > 0 && serverProcessId is { } pid3)
        {
            // At rest: every connection open and signed in, no traffic; the server's CPU over the window, in % of one core.
            var cpuBefore = ProcStats.CpuSeconds(pid3);
            var window = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(settings.AtRestSeconds), cancellationToken);
            atRestPercent = (ProcStats.CpuSeconds(pid3) - cpuBefore) / window.Elapsed.TotalSeconds * 100;
            await progress.WriteLineAsync($"at rest: {atRestPercent:F2} % of a core over {window.Elapsed.TotalSeconds:F0} s");
        }

        await CloseAllAsync(sockets);

        return new IdleResult(settings.Connections, settings.Rooms, sockets.Count, openSeconds,
            rssBefore, rssAfter, rssAfter - rssBefore is { } grown ? grown / 1024.0 / settings.Connections : null)
        {
            AtRestSeconds = settings.AtRestSeconds > 0 ? settings.AtRestSeconds : null,
            AtRestCpuPercentOfCore = atRestPercent,
        };
    }

    private async Task<List<IdleConnection>> OpenAsync(HttpMessageInvoker invoker, string roomPrefix, int rooms, int count,
        CancellationToken cancellationToken)
    {
        var opened = new IdleConnection[count];
        var next = -1;
        var lastReport = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, Math.Min(settings.ConnectConcurrency, count)).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var room = rooms == 0 ? roomPrefix : $"{roomPrefix}-{i % rooms}";
                opened[i] = await IdleConnection.OpenAsync(settings.Url, invoker, $"u{i}", room, cancellationToken);
                if (i % 1000 == 999 && lastReport.Elapsed > TimeSpan.FromSeconds(1))
                {
                    lastReport.Restart();
                    await progress.WriteLineAsync($"  {i + 1} connections open");
                }
            }
        });
        await Task.WhenAll(workers);
        return [.. opened];
    }

    private static async Task CloseAllAsync(List<IdleConnection> connections)
    {
        foreach (var connection in connections)
        {
            connection.Abort();
        }

        await Task.WhenAll(connections.Select(c => c.Reading));
        foreach (var connection in connections)
        {
            connection.Dispose();
        }
    }

    /// <summary>A signed-in socket that keeps reading (join notifications, pings) so the server never sees it stall.</summary>
    private sealed class IdleConnection : IDisposable
    {
        private readonly ClientWebSocket _socket;

        private IdleConnection(ClientWebSocket socket)
        {
            _socket = socket;
            Reading = ReadAsync();
        }

        public Task Reading { get; }

        public static async Task<IdleConnection> OpenAsync(Uri url, HttpMessageInvoker invoker, string user, string room,
            CancellationToken cancellationToken)
        {
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(url, invoker, cancellationToken);
            var signIn = Encoding.UTF8.GetBytes($$"""{"type":"signin","id":1,"user":"{{user}}","room":"{{room}}"}""");
            await socket.SendAsync(signIn, WebSocketMessageType.Text, true, cancellationToken);
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
                if (buffer.AsSpan(0, result.Count).StartsWith("{\"type\":\"ack\""u8))
                {
                    return new IdleConnection(socket);
                }
            }
        }

        public void Abort() => _socket.Abort();

        public void Dispose() => _socket.Dispose();

        private async Task ReadAsync()
        {
            var buffer = new byte[1024];
            try
            {
                while (true)
                {
                    var result = await _socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
            {
                // Aborted at the end of the run.
            }
        }
    }
}

internal sealed record IdleResult(int Connections, int Rooms, int Opened, double OpenSeconds, long? ServerRssBeforeBytes,
    long? ServerRssAfterBytes, double? ServerKiBPerConnection)
{
    /// <summary><c>--at-rest S</c>: the window over which the server's CPU was read with every connection idle.</summary>
    public double? AtRestSeconds { get; init; }

    /// <summary>Server CPU (user + system) over that window, in percent of one core.</summary>
    public double? AtRestCpuPercentOfCore { get; init; }
}
