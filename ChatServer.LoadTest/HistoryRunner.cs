using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace ChatServer.LoadTest;

internal sealed record HistorySettings(Uri Url, int Kept, int Samples, int PageSize = 50, int CatchUp = 5);

/// <summary>
/// What history costs as a room keeps more of it: a room is filled with <c>Kept</c> messages (the server's
/// <c>HistoryLength</c>), then one connection, joined silently, times <c>Samples</c> round trips of each read a client
/// makes: the newest page (<c>history</c>, <c>limit</c> 50), a page from the middle (<c>before</c>), and a 5-message
/// catch-up (<c>updateSocketId</c> with <c>since</c> five behind the head). Reads are sequential, one at a time, so
/// each figure is one read's latency, not a queue's.
/// </summary>
internal sealed class HistoryRunner(HistorySettings settings, TextWriter progress)
{
    private const int Warmup = 50;

    public async Task<HistoryResult> RunAsync(CancellationToken cancellationToken)
    {
        var room = $"lt-history-{Guid.NewGuid():N}"[..24];
        using var client = new Client();
        await client.ConnectAsync(settings.Url, cancellationToken);
        var fill = Stopwatch.StartNew();
        var (epoch, head) = await client.FillAsync(room, settings.Kept, cancellationToken);
        await progress.WriteLineAsync($"history: {settings.Kept} messages stored in {fill.Elapsed.TotalSeconds:F1} s; {settings.Samples} samples of each read");

        var newest = new List<double>(settings.Samples);
        for (var i = 0; i < Warmup; i++)   // unmeasured: JIT and connection warm-up are not the read's cost
        {
            await client.TimeAsync($$"""{"type":"history","limit":{{settings.PageSize}}""", Math.Min(settings.PageSize, settings.Kept), cancellationToken);
        }

        var middle = new List<double>(settings.Samples);
        var catchUps = new List<double>(settings.Samples);
        for (var i = 0; i < settings.Samples; i++)
        {
            newest.Add(await client.TimeAsync($$"""{"type":"history","limit":{{settings.PageSize}}""", Math.Min(settings.PageSize, settings.Kept), cancellationToken));
            middle.Add(await client.TimeAsync($$"""{"type":"history","limit":{{settings.PageSize}},"before":{{head - settings.Kept / 2 + 1}}""",
                Math.Min(settings.PageSize, settings.Kept / 2), cancellationToken));
            catchUps.Add(await client.TimeAsync(
                $$"""{"type":"updateSocketId","user":"reader","room":"{{room}}","since":{{head - settings.CatchUp}},"epoch":"{{epoch}}" """,
                settings.CatchUp, cancellationToken));
        }

        return new HistoryResult(settings.Kept, settings.Samples, Summary.Of(newest), Summary.Of(middle), Summary.Of(catchUps));
    }

    /// <summary>One connection that sends a request and waits for its ack (with the expected number of messages).</summary>
    internal sealed class Client : IDisposable
    {
        private readonly ClientWebSocket _socket = new();
        private byte[] _buffer = new byte[64 * 1024];
        private int _id;

        public async Task ConnectAsync(Uri url, CancellationToken cancellationToken) => await _socket.ConnectAsync(url, cancellationToken);

        /// <summary>Joins silently, then stores <paramref name="count"/> messages, 200 in flight at a time; returns epoch and head.</summary>
        public async Task<(string Epoch, long Head)> FillAsync(string room, int count, CancellationToken cancellationToken)
        {
            using var joined = await RequestAsync($$"""{"type":"updateSocketId","user":"reader","room":"{{room}}" """, cancellationToken);
            var epoch = joined.RootElement.GetProperty("epoch").GetString()!;
            long head = 0;
            for (var sent = 0; sent < count;)
            {
                var batch = Math.Min(200, count - sent);
                var first = _id + 1;
                for (var i = 0; i < batch; i++)
                {
                    await SendAsync($$"""{"type":"sendMessage","id":{{++_id}},"text":"history filler {{sent + i}}"}""", cancellationToken);
                }

                for (var acked = 0; acked < batch;)
                {
                    using var frame = await ReceiveAsync(cancellationToken);
                    if (IsAck(frame, from: first))
                    {
                        head = Math.Max(head, frame.RootElement.GetProperty("seq").GetInt64());
                        acked++;
                    }
                }

                sent += batch;
            }

            return (epoch, head);
        }

        /// <summary>Milliseconds from sending <paramref name="request"/> (an object left open for the id) to its ack.</summary>
        public async Task<double> TimeAsync(string request, int expectedMessages, CancellationToken cancellationToken)
        {
            var started = Stopwatch.GetTimestamp();
            using var ack = await RequestAsync(request, cancellationToken);
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var messages = ack.RootElement.TryGetProperty("messages", out var list) ? list.GetArrayLength() : 0;
            if (messages != expectedMessages)
            {
                throw new InvalidOperationException($"Expected {expectedMessages} messages, got {messages}: {ack.RootElement.GetRawText()[..Math.Min(300, ack.RootElement.GetRawText().Length)]}");
            }

            return elapsed;
        }

        public void Dispose() => _socket.Dispose();

        /// <summary>Sends <paramref name="openRequest"/> (an object left open for the id) and returns its ack; refused: throws.</summary>
        public async Task<JsonDocument> RequestAsync(string openRequest, CancellationToken cancellationToken)
        {
            var id = ++_id;
            await SendAsync($"{openRequest.TrimEnd()},\"id\":{id}}}", cancellationToken);
            while (true)
            {
                var frame = await ReceiveAsync(cancellationToken);
                if (IsAck(frame, from: id))
                {
                    if (!frame.RootElement.GetProperty("ok").GetBoolean())
                    {
                        throw new InvalidOperationException($"Refused: {frame.RootElement.GetRawText()}");
                    }

                    return frame;
                }

                frame.Dispose();
            }
        }

        private static bool IsAck(JsonDocument frame, int from) =>
            frame.RootElement.GetProperty("type").GetString() == "ack"
            && frame.RootElement.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.Number && id.GetInt32() >= from;

        private Task SendAsync(string frame, CancellationToken cancellationToken) =>
            _socket.SendAsync(Encoding.UTF8.GetBytes(frame), WebSocketMessageType.Text, true, cancellationToken);

        private async Task<JsonDocument> ReceiveAsync(CancellationToken cancellationToken)
        {
            var length = 0;
            while (true)
            {
                if (length == _buffer.Length)
                {
                    Array.Resize(ref _buffer, _buffer.Length * 2);   // a sign-in ack with 10,000 messages is about 1.5 MB
                }

                var result = await _socket.ReceiveAsync(_buffer.AsMemory(length), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    throw new InvalidOperationException("The server closed the connection.");
                }

                length += result.Count;
                if (result.EndOfMessage)
                {
                    return JsonDocument.Parse(new ReadOnlySequence<byte>(_buffer, 0, length));
                }
            }
        }
    }
}

internal sealed record HistoryResult(int Kept, int Samples, Summary NewestPage, Summary MiddlePage, Summary CatchUp);

internal sealed record Summary(double MedianMs, double P95Ms, double MaxMs)
{
    public static Summary Of(List<double> samples)
    {
        samples.Sort();
        return new(samples[samples.Count / 2], samples[(int)Math.Min(samples.Count - 1, Math.Ceiling(samples.Count * 0.95) - 1)], samples[^1]);
    }
}
