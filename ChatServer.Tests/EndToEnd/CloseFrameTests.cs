using System.Collections.Concurrent;

namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// RFC 6455 §5.5.1 and §7.1.7: whatever makes the server close a connection, its Close frame is the last frame it
/// sends, and it is sent (not a bare TCP end) while the peer still reads. Each case is provoked with frames in flight
/// (acks, messages, notifications of the same room) over many connections on two instances sharing the test Redis,
/// by a hand-written client (<see cref="RawWebSocket"/>) that sees every byte up to the end of the TCP stream.
/// </summary>
public sealed class CloseFrameTests() : TwoHostFixture(Backend.Redis)
{
    private const int RoomSize = 10;   // connections per room, half on each instance

    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
        ["Chat:CloseTimeout"] = "00:00:10",
        ["Chat:KeepAlive"] = "00:01:00",
    };

    private static IEnumerable<(string Name, Func<byte[]> Frame)> Violations =>
    [
        ("an unmasked frame", () => RawWebSocket.Frame(0x1, """{"type":"sendMessage","text":"x"}"""u8, masked: false)),
        ("reserved bits", () => RawWebSocket.Frame(0x1, """{"type":"sendMessage","text":"x"}"""u8, rsv: 0b010)),
        ("a reserved opcode", () => RawWebSocket.Frame(0x3, "x"u8)),
    ];

    [Test, CancelAfter(180_000)]
    public async Task A_protocol_error_with_frames_in_flight_ends_with_Close_1002_and_nothing_after(CancellationToken cancellationToken)
    {
        var violations = Violations.ToArray();
        var problems = await ProvokeAsync(connectionsPerInstance: 100, 1002, n => violations[n % violations.Length], cancellationToken);
        Assert.That(problems, Is.Empty);
    }

    [Test, CancelAfter(180_000)]
    public async Task A_frame_over_the_limit_with_frames_in_flight_ends_with_Close_1009_and_nothing_after(CancellationToken cancellationToken)
    {
        var tooBig = RawWebSocket.Frame(0x1, Enumerable.Repeat((byte)'x', 16 * 1024 + 1).ToArray());
        var problems = await ProvokeAsync(connectionsPerInstance: 50, 1009, _ => ("a frame over 16 KiB", () => tooBig), cancellationToken);
        Assert.That(problems, Is.Empty);
    }

    [Test, CancelAfter(180_000)]
    public async Task A_client_that_does_not_read_gets_Close_1008_as_the_last_frame(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("close-1008");
        await using var watcher = await ChatClient.SignInAsync(HostA.WebSocketUri, "watcher", room, cancellationToken);
        await using var sender = await ChatClient.SignInAsync(HostB.WebSocketUri, "sender", room, cancellationToken);
        var stuck = new List<RawWebSocket>();
        try
        {
            for (var i = 0; i < 2 * RoomSize; i++)
            {
                var client = await SignInRawAsync(i % 2 == 0 ? HostA : HostB, $"stuck{i}", room, cancellationToken, receiveBufferSize: 4096);
                stuck.Add(client);
                await client.SendRawAsync(SendMessages(1 + i), cancellationToken);   // their acks and messages are queued
            }

            // Blast big messages until every non-reader has been cut off (the watcher sees each one leave).
            var left = new HashSet<string>();
            var allLeft = watcher.ExpectAsync(f =>
            {
                if (f.Type == "notification" && f.Title == "Someone just left" && f.User!.StartsWith("stuck", StringComparison.Ordinal))
                {
                    left.Add(f.User);
                }

                return left.Count == stuck.Count;
            }, cancellationToken);
            var text = new string('x', 1900);
            for (var sent = 0; !allLeft.IsCompleted; sent++)
            {
                var ack = sender.RequestAsync(new { type = "sendMessage", text }, cancellationToken);
                await Task.WhenAny(ack, allLeft);
                Assert.That(sent, Is.LessThan(50_000), "the non-readers were never cut off");
            }

            await allLeft;

            // Now they read: everything that reaches each ends with its Close 1008.
            var transcripts = await Task.WhenAll(stuck.Select(s => s.ReadToEndAsync(cancellationToken)));
            var problems = transcripts.Select((t, i) => t.Problem(1008) is { } p ? $"stuck{i}: {p}" : null).OfType<string>().ToList();
            Report("slow consumer (1008)", problems, transcripts.Length);
            Assert.That(problems, Is.Empty);
        }
        finally
        {
            foreach (var client in stuck)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Test, CancelAfter(180_000)]
    public async Task Shutdown_with_frames_in_flight_ends_each_connection_with_Close_1012_and_nothing_after(CancellationToken cancellationToken)
    {
        var stopping = new ChatHost(TestRedis.ConnectionString, Settings);
        var clients = new List<RawWebSocket>();
        var rooms = Enumerable.Range(0, 4).Select(_ => TestNames.Room("close-1012")).ToArray();
        try
        {
            for (var i = 0; i < 4 * RoomSize; i++)
            {
                clients.Add(await SignInRawAsync(stopping, $"u{i}", rooms[i % rooms.Length], cancellationToken));
            }

            // Keep the rooms busy from the surviving instance while the other one stops.
            await using var feeder = await ChatClient.SignInAsync(HostA.WebSocketUri, "feeder", rooms[0], cancellationToken);
            using var stopFeeding = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var feeding = FeedAsync(feeder, rooms, stopFeeding.Token);

            await Task.WhenAll(clients.Select((c, i) => c.SendRawAsync(SendMessages(1 + (i % 20)), cancellationToken)));
            var reading = clients.Select(c => c.ReadToEndAsync(cancellationToken)).ToArray();
            await stopping.DisposeAsync();
            var transcripts = await Task.WhenAll(reading);
            await stopFeeding.CancelAsync();
            await feeding;

            var problems = transcripts.Select((t, i) => t.Problem(1012) is { } p ? $"u{i}: {p}" : null).OfType<string>().ToList();
            Report("shutdown (1012)", problems, transcripts.Length);
            Assert.That(problems, Is.Empty);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            await stopping.DisposeAsync();
        }
    }

    /// <summary>
    /// Opens <paramref name="connectionsPerInstance"/> connections on each instance, rooms of <see cref="RoomSize"/>
    /// split across both; each sends, in one write, 1-20 <c>sendMessage</c> frames and then the violation, and reads
    /// to the end of the stream. Returns what went wrong, one line per connection.
    /// </summary>
    private async Task<IReadOnlyList<string>> ProvokeAsync(int connectionsPerInstance, ushort status,
        Func<int, (string Name, Func<byte[]> Frame)> violation, CancellationToken cancellationToken)
    {
        var problems = new ConcurrentQueue<string>();
        var total = 2 * connectionsPerInstance;
        for (var first = 0; first < total; first += RoomSize)
        {
            var room = TestNames.Room($"close-{status}");
            var clients = new List<RawWebSocket>();
            try
            {
                for (var i = 0; i < RoomSize; i++)
                {
                    clients.Add(await SignInRawAsync(i % 2 == 0 ? HostA : HostB, $"u{first + i}", room, cancellationToken));
                }

                await Task.WhenAll(clients.Select(async (client, i) =>
                {
                    var n = first + i;
                    var (name, frame) = violation(n);
                    await client.SendRawAsync(SendMessages(1 + (n % 20)).Concat(frame()).ToArray(), cancellationToken);
                    var transcript = await client.ReadToEndAsync(cancellationToken);
                    if (transcript.Problem(status) is { } problem)
                    {
                        problems.Enqueue($"connection {n} ({name}, {1 + (n % 20)} in flight, instance {(i % 2 == 0 ? "A" : "B")}): {problem}");
                    }
                }));
            }
            finally
            {
                foreach (var client in clients)
                {
                    await client.DisposeAsync();
                }
            }
        }

        Report($"close {status}", [.. problems], total);
        return [.. problems];
    }

    private static async Task<RawWebSocket> SignInRawAsync(ChatHost host, string user, string room, CancellationToken cancellationToken,
        int? receiveBufferSize = null)
    {
        var client = await RawWebSocket.ConnectAsync(host.WebSocketUri, cancellationToken, receiveBufferSize);
        await client.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = "in", user, room }), cancellationToken);
        await client.ExpectAsync(f => f.IsAck("in"), cancellationToken);
        return client;
    }

    private static byte[] SendMessages(int count) =>
        [.. Enumerable.Range(0, count).SelectMany(k => RawWebSocket.Text(new { type = "sendMessage", id = k, text = $"in flight {k}" }))];

    private static async Task FeedAsync(ChatClient feeder, string[] rooms, CancellationToken cancellationToken)
    {
        try
        {
            for (var i = 0; ; i++)
            {
                await feeder.RequestAsync(new { type = "signin", user = "feeder", room = rooms[i % rooms.Length] }, cancellationToken);
                for (var k = 0; k < 5; k++)
                {
                    await feeder.RequestAsync(new { type = "sendMessage", text = $"feed {i}.{k}" }, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static void Report(string what, List<string> problems, int total)
    {
        TestContext.Out.WriteLine($"{what}: {problems.Count} of {total} connections ended wrong " +
            $"({problems.Count(p => p.Contains("after the Close", StringComparison.Ordinal))} with frames after the Close, " +
            $"{problems.Count(p => p.Contains("no Close", StringComparison.Ordinal))} without a Close).");
        foreach (var problem in problems.Take(20))
        {
            TestContext.Out.WriteLine(problem);
        }
    }
}
