using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;

namespace ChatServer.LoadTest;

internal sealed record RoomsSettings(Uri Url, int Rooms, int Clients, int MessagesPerRoom, int? RedisPort, double SettleSeconds, int Repeat);

/// <summary>
/// A flood of room names (issue 12): <c>Clients</c> connections walk through <c>Rooms</c> distinct rooms between them,
/// each sign-in moving the connection to a fresh room (so it leaves the previous one) and sending
/// <c>MessagesPerRoom</c> messages there. The server's resident memory and Redis's <c>used_memory</c> and key count are
/// read before (after a warm-up), after the flood (clients still connected, each in its last room) and after every
/// client has left; with <c>Repeat</c> above 1 the flood runs again with new names, to see whether memory keeps growing.
/// </summary>
internal sealed class RoomsRunner(RoomsSettings settings, int? serverProcessId, TextWriter progress)
{
    public async Task<RoomsResult> RunAsync(CancellationToken cancellationToken)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        await FloodAsync($"warm-{run}", Math.Min(200, settings.Rooms), cancellationToken);   // JIT, pools: not billed to the flood
        var before = await SampleAsync("before", cancellationToken);

        var samples = new List<RoomsSample> { before };
        var seconds = new List<double>();
        for (var round = 1; round <= settings.Repeat; round++)
        {
            var clock = Stopwatch.StartNew();
            var clients = await FloodAsync($"flood-{run}-{round}", settings.Rooms, cancellationToken, keepOpen: true);
            seconds.Add(clock.Elapsed.TotalSeconds);
            await progress.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"rooms: {settings.Rooms} distinct rooms visited in {seconds[^1]:F1} s ({settings.Rooms / seconds[^1]:F0}/s); settling"));
            var suffix = settings.Repeat > 1 ? $" {round}" : "";
            samples.Add(await SampleAsync($"after the flood{suffix} ({round * settings.Rooms} rooms so far)", cancellationToken));
            foreach (var client in clients)
            {
                await client.CloseAsync(cancellationToken);
            }

            samples.Add(await SampleAsync($"after everyone left{suffix}", cancellationToken));
        }

        return new RoomsResult(settings.Rooms, settings.Clients, settings.MessagesPerRoom, seconds, samples);
    }

    private async Task<List<FloodClient>> FloodAsync(string prefix, int rooms, CancellationToken cancellationToken, bool keepOpen = false)
    {
        var next = -1;
        var clients = await Task.WhenAll(Enumerable.Range(0, settings.Clients).Select(async c =>
        {
            var client = await FloodClient.ConnectAsync(settings.Url, cancellationToken);
            int i;
            while ((i = Interlocked.Increment(ref next)) < rooms)
            {
                await client.RequestAsync($$"""{"type":"signin","id":{{i}},"user":"u{{c}}","room":"{{prefix}}-{{i}}"}""", cancellationToken);
                for (var m = 0; m < settings.MessagesPerRoom; m++)
                {
                    await client.RequestAsync($$"""{"type":"sendMessage","id":"m{{m}}","text":"hello {{i}}"}""", cancellationToken);
                }

                if (i % 5000 == 4999)
                {
                    await progress.WriteLineAsync($"  {i + 1} rooms visited");
                }
            }

            return client;
        }));
        if (!keepOpen)
        {
            foreach (var client in clients)
            {
                await client.CloseAsync(cancellationToken);
            }
        }

        return [.. clients];
    }

    private async Task<RoomsSample> SampleAsync(string label, CancellationToken cancellationToken)
    {
        await Task.Delay(TimeSpan.FromSeconds(settings.SettleSeconds), cancellationToken);
        var rss = serverProcessId is { } pid ? ProcStats.RssBytes(pid) : (long?)null;
        long? usedMemory = null, keys = null;
        if (settings.RedisPort is { } port)
        {
            var info = await RedisInlineAsync(port, "INFO memory", cancellationToken);
            usedMemory = long.Parse(info.Split('\n').First(l => l.StartsWith("used_memory:", StringComparison.Ordinal))[12..].Trim(),
                CultureInfo.InvariantCulture);
            keys = long.Parse((await RedisInlineAsync(port, "DBSIZE", cancellationToken)).TrimStart(':').Trim(), CultureInfo.InvariantCulture);
        }

        var sample = new RoomsSample(label, rss, usedMemory, keys);
        await progress.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"  {label}: server RSS {rss / 1048576.0:F1} MiB, Redis used_memory {usedMemory / 1048576.0:F2} MiB, keys {keys}"));
        return sample;
    }

    /// <summary>One inline command on a fresh connection; the reply's payload (bulk string or integer line).</summary>
    private static async Task<string> RedisInlineAsync(int port, string command, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port, cancellationToken);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"), cancellationToken);
        var reply = new StringBuilder();
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            reply.Append(Encoding.ASCII.GetString(buffer, 0, read));
            var text = reply.ToString();
            if (text.StartsWith(':') && text.EndsWith("\r\n", StringComparison.Ordinal))
            {
                return text;
            }

            if (text.StartsWith('$') && text.IndexOf("\r\n", StringComparison.Ordinal) is var header and > 0
                && int.Parse(text[1..header], CultureInfo.InvariantCulture) is var length && text.Length >= header + 2 + length)
            {
                return text.Substring(header + 2, length);
            }

            if (read == 0)
            {
                throw new IOException($"Redis closed the connection: {text}");
            }
        }
    }

    /// <summary>One connection that asks and waits for each ack, skipping anything else the server sends.</summary>
    private sealed class FloodClient(ClientWebSocket socket)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];

        public static async Task<FloodClient> ConnectAsync(Uri url, CancellationToken cancellationToken)
        {
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(url, cancellationToken);
            return new FloodClient(socket);
        }

        public async Task RequestAsync(string frame, CancellationToken cancellationToken)
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(frame), WebSocketMessageType.Text, true, cancellationToken);
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(_buffer.AsMemory(count), cancellationToken);
                    count += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    throw new IOException($"closed by the server: {socket.CloseStatus} {socket.CloseStatusDescription}");
                }

                var text = Encoding.UTF8.GetString(_buffer, 0, count);
                if (text.StartsWith("{\"type\":\"ack\"", StringComparison.Ordinal))
                {
                    if (!text.Contains("\"ok\":true", StringComparison.Ordinal))
                    {
                        throw new IOException($"refused: {text}");
                    }

                    return;
                }
            }
        }

        public async Task CloseAsync(CancellationToken cancellationToken)
        {
            try
            {
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancellationToken);
            }
            catch (WebSocketException)
            {
                // already gone
            }

            socket.Dispose();
        }
    }
}

internal sealed record RoomsSample(string Label, long? ServerRssBytes, long? RedisUsedMemoryBytes, long? RedisKeys);

internal sealed record RoomsResult(int Rooms, int Clients, int MessagesPerRoom, List<double> Seconds, List<RoomsSample> Samples);
