using System.Buffers.Text;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;

namespace ChatServer.LoadTest;

internal sealed record FanoutSettings(IReadOnlyList<Uri> Urls, int Rooms, int Members, double Rate, double DurationSeconds,
    double DrainSeconds = 5, int ConnectConcurrency = 50);

/// <summary>
/// One fan-out run: <c>Rooms × Members</c> signed-in connections spread round-robin over the URLs, every member also a
/// sender. A pacer enqueues message <c>i</c> at <c>start + i / rate</c> whatever happened before (open loop), and the
/// latency of a delivery is measured from that scheduled time, so a server that falls behind cannot hide it by slowing
/// the senders. Each text is <c>"&lt;sender&gt; &lt;n&gt; &lt;scheduled ticks&gt;"</c>, enough to find lost, duplicated
/// and reordered deliveries per sender at every receiver. With an <see cref="ArchiveProbe"/>, the history archive is
/// measured over the same window as the servers' CPU.
/// </summary>
internal sealed class FanoutRunner(FanoutSettings settings, IReadOnlyList<int> serverProcessIds, TextWriter progress, ArchiveProbe? archive = null)
{
    public async Task<FanoutResult> RunAsync(CancellationToken cancellationToken)
    {
        var total = (long)Math.Round(settings.Rate * settings.DurationSeconds);
        var senders = settings.Rooms * settings.Members;
        var perSender = (int)((total + senders - 1) / senders);
        var run = Guid.NewGuid().ToString("N")[..8];

        var members = new Member[senders];
        using var connectGate = new SemaphoreSlim(settings.ConnectConcurrency);
        var connecting = new List<Task>();
        var clock = Stopwatch.StartNew();
        for (var room = 0; room < settings.Rooms; room++)
        {
            for (var index = 0; index < settings.Members; index++)
            {
                var slot = room * settings.Members + index;
                var member = members[slot] = new Member(index, settings.Members, perSender);
                var url = settings.Urls[slot % settings.Urls.Count];
                var roomName = $"lt-{run}-{room}";
                connecting.Add(ConnectAsync(member, url, $"u{index}", roomName, connectGate, cancellationToken));
            }
        }

        await Task.WhenAll(connecting);
        await progress.WriteLineAsync($"fanout: {senders} members signed in over {settings.Urls.Count} URL(s) in {clock.Elapsed.TotalSeconds:F1} s; " +
            $"{total} messages at {settings.Rate:F0}/s for {settings.DurationSeconds:F0} s");

        var receiving = members.Select(m => m.ReceiveLoopAsync(cancellationToken)).ToArray();
        var sending = members.Select(m => m.SendLoopAsync(cancellationToken)).ToArray();

        // Interleave senders across rooms so every room sees an even stream: sender order j -> room j % R.
        var order = new Member[senders];
        for (var j = 0; j < senders; j++)
        {
            order[j] = members[(j % settings.Rooms) * settings.Members + (j / settings.Rooms) % settings.Members];
        }

        archive?.Begin($"lt-{run}-");
        var cpuBefore = serverProcessIds.Select(ProcStats.CpuSeconds).ToArray();
        var toolCpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var expected = total * settings.Members;
        var start = Stopwatch.GetTimestamp();
        var ticksPerMessage = Stopwatch.Frequency / settings.Rate;
        long next = 0;
        var lastReport = start;
        long lastDelivered = 0;
        while (next < total)
        {
            var now = Stopwatch.GetTimestamp();
            while (next < total && start + (long)(next * ticksPerMessage) <= now)
            {
                var scheduled = start + (long)(next * ticksPerMessage);
                order[next % senders].Enqueue((int)(next / senders), scheduled);
                next++;
            }

            if (now - lastReport >= Stopwatch.Frequency)
            {
                lastDelivered = await ReportAsync(members, next, expected, start, now, lastReport, lastDelivered);
                lastReport = now;
            }

            await Task.Delay(1, cancellationToken);
        }

        foreach (var member in members)
        {
            member.CompleteSending();
        }

        await Task.WhenAll(sending);
        var sendEnd = Stopwatch.GetTimestamp();

        // Wait for the last deliveries; give up when nothing has arrived for DrainSeconds (the rest is lost).
        var lastSeen = (Count: Delivered(members), At: Stopwatch.GetTimestamp());
        while (lastSeen.Count < expected)
        {
            await Task.Delay(50, cancellationToken);
            var now = Stopwatch.GetTimestamp();
            var count = Delivered(members);
            if (count != lastSeen.Count)
            {
                lastSeen = (count, now);
            }
            else if (Stopwatch.GetElapsedTime(lastSeen.At, now).TotalSeconds > settings.DrainSeconds)
            {
                break;
            }

            if (now - lastReport >= Stopwatch.Frequency)
            {
                lastDelivered = await ReportAsync(members, next, expected, start, now, lastReport, lastDelivered);
                lastReport = now;
            }
        }

        var lastDelivery = members.Max(m => m.LastDeliveryTimestamp);
        var cpuAfter = serverProcessIds.Select(ProcStats.CpuSeconds).ToArray();
        var toolCpu = (Process.GetCurrentProcess().TotalProcessorTime - toolCpuBefore).TotalSeconds;
        var archiveWindow = archive is null ? null : await archive.EndWindowAsync(cancellationToken);

        foreach (var member in members)
        {
            member.Close();
        }

        await Task.WhenAll(receiving);
        foreach (var member in members)
        {
            member.Dispose();
        }

        var latencies = new List<int>((int)Math.Min(expected, int.MaxValue));
        foreach (var member in members)
        {
            latencies.AddRange(member.Latencies);
        }

        latencies.Sort();
        var delivered = members.Sum(m => m.Unique);
        var serverCpu = cpuAfter.Zip(cpuBefore, (a, b) => a - b).Sum();
        var window = Stopwatch.GetElapsedTime(start, Math.Max(lastDelivery, sendEnd)).TotalSeconds;
        var rejected = members.Sum(m => m.Rejected);
        var archived = archive is null ? null : await archive.ResultAsync(archiveWindow!, total - rejected, cancellationToken);
        return new FanoutResult(
            settings.Rooms, settings.Members, settings.Urls.Count, settings.Rate, settings.DurationSeconds,
            MessagesSent: total,
            DeliveriesExpected: expected,
            Delivered: delivered,
            Lost: expected - delivered,
            Duplicated: members.Sum(m => m.Duplicated),
            OutOfOrder: members.Sum(m => m.OutOfOrder),
            Rejected: rejected,
            DeliveriesPerSecond: delivered / window,
            LatencyP50Ms: Percentile(latencies, 0.50),
            LatencyP95Ms: Percentile(latencies, 0.95),
            LatencyP99Ms: Percentile(latencies, 0.99),
            LatencyMaxMs: latencies.Count == 0 ? 0 : latencies[^1] / 1000.0,
            ServerCpuSeconds: serverProcessIds.Count == 0 ? null : serverCpu,
            DeliveriesPerServerCpuSecond: serverProcessIds.Count == 0 || serverCpu <= 0 ? null : delivered / serverCpu,
            LoadToolCpuSeconds: toolCpu)
        {
            Archive = archived,
        };
    }

    private async Task<long> ReportAsync(Member[] members, long sent, long expected, long start, long now, long lastReport, long lastDelivered)
    {
        var delivered = Delivered(members);
        var rate = (delivered - lastDelivered) / Stopwatch.GetElapsedTime(lastReport, now).TotalSeconds;
        var cpu = serverProcessIds.Count == 0 ? "" : $", server CPU {serverProcessIds.Sum(ProcStats.CpuSeconds):F1} s";
        await progress.WriteLineAsync($"  {Stopwatch.GetElapsedTime(start, now).TotalSeconds,5:F1} s  sent {sent,8}  delivered {delivered,9}/{expected}  " +
            $"{rate,9:F0} deliveries/s{cpu}");
        return delivered;
    }

    private static long Delivered(Member[] members)
    {
        long sum = 0;
        foreach (var member in members)
        {
            sum += Volatile.Read(ref member.Received);
        }

        return sum;
    }

    private static double Percentile(List<int> sortedMicroseconds, double p) =>
        sortedMicroseconds.Count == 0 ? 0 : sortedMicroseconds[(int)Math.Min(sortedMicroseconds.Count - 1, Math.Ceiling(p * sortedMicroseconds.Count) - 1)] / 1000.0;

    private static async Task ConnectAsync(Member member, Uri url, string user, string room, SemaphoreSlim gate, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken);
        try
        {
            await member.ConnectAsync(url, user, room, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>One connection: a sender (its own queue and send loop) and a receiver keeping per-sender bookkeeping.</summary>
    private sealed class Member(int index, int roomSize, int perSender) : IDisposable
    {
        private static readonly byte[] s_textField = "\"text\":\""u8.ToArray();
        private readonly ClientWebSocket _socket = new();
        private readonly Channel<(int N, long Scheduled)> _outgoing = Channel.CreateUnbounded<(int, long)>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        private readonly int[] _last = Enumerable.Repeat(-1, roomSize).ToArray();
        private readonly bool[][] _seen = Enumerable.Range(0, roomSize).Select(_ => new bool[perSender]).ToArray();

        public long Received;   // read by the progress report while the receive loop writes it

        public List<int> Latencies { get; } = new(perSender * roomSize);

        public long Unique { get; private set; }

        public long Duplicated { get; private set; }

        public long OutOfOrder { get; private set; }

        public long Rejected { get; private set; }

        public long LastDeliveryTimestamp { get; private set; }

        public async Task ConnectAsync(Uri url, string user, string room, CancellationToken cancellationToken)
        {
            await _socket.ConnectAsync(url, cancellationToken);
            var signIn = Encoding.UTF8.GetBytes($$"""{"type":"signin","id":1,"user":"{{user}}","room":"{{room}}"}""");
            await _socket.SendAsync(signIn, WebSocketMessageType.Text, true, cancellationToken);
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, cancellationToken);
                var frame = buffer.AsSpan(0, result.Count);
                if (frame.StartsWith("{\"type\":\"ack\""u8))
                {
                    if (frame.IndexOf("\"ok\":true"u8) < 0)
                    {
                        throw new InvalidOperationException($"Sign-in refused: {Encoding.UTF8.GetString(frame)}");
                    }

                    return;
                }
            }
        }

        public void Enqueue(int n, long scheduled) => _outgoing.Writer.TryWrite((n, scheduled));

        public void CompleteSending() => _outgoing.Writer.TryComplete();

        public async Task SendLoopAsync(CancellationToken cancellationToken)
        {
            await foreach (var (n, scheduled) in _outgoing.Reader.ReadAllAsync(cancellationToken))
            {
                var frame = Encoding.ASCII.GetBytes($$"""{"type":"sendMessage","text":"{{index}} {{n}} {{scheduled}}"}""");
                await _socket.SendAsync(frame, WebSocketMessageType.Text, true, cancellationToken);
            }
        }

        public async Task ReceiveLoopAsync(CancellationToken cancellationToken)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var length = 0;
                    ValueWebSocketReceiveResult result;
                    do
                    {
                        result = await _socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                        length += result.Count;
                    }
                    while (!result.EndOfMessage && length < buffer.Length);

                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    Handle(buffer.AsSpan(0, length), Stopwatch.GetTimestamp());
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // Closed by Close() at the end of the run, or by the server.
            }
        }

        public void Close() => _socket.Abort();

        public void Dispose() => _socket.Dispose();

        private void Handle(ReadOnlySpan<byte> frame, long now)
        {
            if (frame.StartsWith("{\"type\":\"ack\""u8))
            {
                if (frame.IndexOf("\"ok\":false"u8) >= 0)
                {
                    Rejected++;
                }

                return;
            }

            if (!frame.StartsWith("{\"type\":\"message\""u8))
            {
                return;   // notifications of members joining
            }

            var at = frame.IndexOf(s_textField);
            if (at < 0)
            {
                return;
            }

            var text = frame[(at + s_textField.Length)..];
            if (!Utf8Parser.TryParse(text, out int sender, out var used) || !Utf8Parser.TryParse(text[(used + 1)..], out int n, out var usedN)
                || !Utf8Parser.TryParse(text[(used + 1 + usedN + 1)..], out long scheduled, out _)
                || (uint)sender >= (uint)_seen.Length || (uint)n >= (uint)perSender)
            {
                return;
            }

            if (_seen[sender][n])
            {
                Duplicated++;
                return;
            }

            _seen[sender][n] = true;
            if (n < _last[sender])
            {
                OutOfOrder++;
            }
            else
            {
                _last[sender] = n;
            }

            Unique++;
            Latencies.Add((int)Math.Min(int.MaxValue, (now - scheduled) * 1_000_000 / Stopwatch.Frequency));
            LastDeliveryTimestamp = now;
            Volatile.Write(ref Received, Received + 1);
        }
    }
}

internal sealed record FanoutResult(int Rooms, int Members, int Urls, double Rate, double DurationSeconds, long MessagesSent,
    long DeliveriesExpected, long Delivered, long Lost, long Duplicated, long OutOfOrder, long Rejected, double DeliveriesPerSecond,
    double LatencyP50Ms, double LatencyP95Ms, double LatencyP99Ms, double LatencyMaxMs, double? ServerCpuSeconds,
    double? DeliveriesPerServerCpuSecond, double LoadToolCpuSeconds)
{
    /// <summary>The history archive over the same window (<c>--archive-ab</c>); null when not measured.</summary>
    public ArchiveResult? Archive { get; init; }

    public bool Passes(double p99BoundMs) => Lost == 0 && Duplicated == 0 && OutOfOrder == 0 && Rejected == 0 && LatencyP99Ms <= p99BoundMs;
}
