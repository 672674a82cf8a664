using System.Net.WebSockets;
using System.Text;
using static ChatServer.Tests.Faults.FaultHelpers;

namespace ChatServer.Tests.Faults;

/// <summary>
/// Thousands of random and mutated frames, from a fixed seed, over several connections on two instances. The server
/// must never crash; every frame it can read gets exactly one ack; the connection stays usable except where the
/// protocol closes it (a frame over 16 KiB: 1009; invalid UTF-8: 1007); and only frames acknowledged as stored change
/// state: each room's <c>seq</c> in Redis equals the number of <c>ok:true</c> sendMessage acks for it.
/// </summary>
public sealed class FuzzTests
{
    private const int Seed = 20261125;
    private const int Connections = 4;
    private const int FramesPerConnection = 800;
    private const string Punctuation = "{}[]\":,0a\\ ";

    private static readonly string[] s_fragments =
    [
        "{", "}", "[", "]", ",", ":", "\"", "null", "true", "false", "0", "-1", "1e400", "123456789012345678901234567890",
        "\"type\"", "\"signin\"", "\"sendMessage\"", "\"updateSocketId\"", "\"id\"", "\"user\"", "\"room\"", "\"text\"",
        "\"since\"", "\"epoch\"", "\"\\ud800\"", "\"\\u0000\"", "\"😀\"", "\"<b>\"", "{}", "[]", "\"\"", " ", "\\",
    ];

    [Test, CancelAfter(180_000)]
    public async Task Random_and_mutated_frames_never_break_the_server_and_each_readable_frame_gets_one_ack(CancellationToken cancellationToken)
    {
        var settings = new Dictionary<string, string?> { ["Chat:RateLimitPerSecond"] = "1000000", ["Chat:RateLimitBurst"] = "1000000" };
        await using var hostA = new ChatHost(TestRedis.ConnectionString, settings);
        await using var hostB = new ChatHost(TestRedis.ConnectionString, settings);
        var rooms = Enumerable.Range(0, 3).Select(i => TestNames.Room($"fuzz{i}")).ToArray();
        var storedPerRoom = new Dictionary<string, long>();

        var tasks = Enumerable.Range(0, Connections).Select(c =>
            FuzzOneConnectionAsync(c % 2 == 0 ? hostA : hostB, new Random(Seed + c), rooms, storedPerRoom, cancellationToken));
        var totals = await Task.WhenAll(tasks);

        TestContext.Progress.WriteLine($"fuzz: {totals.Sum(t => t.Frames)} frames, {totals.Sum(t => t.Acks)} acks, " +
            $"{totals.Sum(t => t.Closes)} protocol closes, {storedPerRoom.Values.Sum()} stored messages");
        Assert.That(totals.Sum(t => t.Frames), Is.GreaterThanOrEqualTo(Connections * FramesPerConnection));
        foreach (var (room, stored) in storedPerRoom)
        {
            var seq = await AdminAsync(TestRedis.ConnectionString, "HGET", $"chat:{{{ChatServer.Rooms.RoomKeys.Escape(room)}}}:meta", "seq");
            Assert.That(seq.IsNull ? 0 : (long)seq, Is.EqualTo(stored), $"room {room}: only acknowledged messages were stored");
        }

        using var http = hostA.CreateHttpClient();
        Assert.That((await http.GetAsync("/readyz", cancellationToken)).IsSuccessStatusCode, Is.True, "still serving");
    }

    private static async Task<(int Frames, int Acks, int Closes)> FuzzOneConnectionAsync(ChatHost host, Random random, string[] rooms,
        Dictionary<string, long> storedPerRoom, CancellationToken cancellationToken)
    {
        var (frames, acks, closes) = (0, 0, 0);
        string? currentRoom = null;
        var client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        try
        {
            while (frames < FramesPerConnection)
            {
                var (bytes, kind) = NextFrame(random, rooms);
                frames++;
                if (kind == FrameKind.Fragmented)
                {
                    await SendFragmentedAsync(client, bytes, random, cancellationToken);
                }
                else
                {
                    await client.SendBytesAsync(bytes, kind == FrameKind.Binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, cancellationToken);
                }

                if (kind is FrameKind.TooBig or FrameKind.InvalidUtf8)
                {
                    // The protocol closes these connections (1009, 1007); the client reconnects, as a real one would.
                    var status = await client.WaitForCloseAsync(cancellationToken);
                    Assert.That(status, Is.EqualTo(kind == FrameKind.TooBig ? WebSocketCloseStatus.MessageTooBig : WebSocketCloseStatus.InvalidPayloadData).Or.Null);
                    closes++;
                    await client.DisposeAsync();
                    client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
                    currentRoom = null;
                    continue;
                }

                var ack = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
                acks++;
                if (!ack.Ok)
                {
                    Assert.That(ack.Error, Is.Not.Null.And.Not.Empty, ack.Raw);
                    continue;
                }

                if (ack.Room is { } joined)
                {
                    currentRoom = joined;   // a signin or updateSocketId that succeeded
                }
                else if (ack.Seq is not null)
                {
                    Assert.That(currentRoom, Is.Not.Null, "a message was stored for a connection in no room");
                    lock (storedPerRoom)
                    {
                        storedPerRoom[currentRoom!] = storedPerRoom.GetValueOrDefault(currentRoom!) + 1;
                    }
                }
            }

            // Exactly one ack per frame: the next ack after all of that is the sentinel's own.
            await client.SendRawAsync("""{"type":"sendMessage","id":"sentinel","text":"x"}""", cancellationToken);
            var last = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
            Assert.That(last.IdJson, Is.EqualTo("\"sentinel\""), last.Raw);
            if (last.Ok)
            {
                lock (storedPerRoom)
                {
                    storedPerRoom[currentRoom!] = storedPerRoom.GetValueOrDefault(currentRoom!) + 1;
                }
            }
        }
        finally
        {
            await client.DisposeAsync();
        }

        return (frames, acks, closes);
    }

    private enum FrameKind
    {
        Text,
        Binary,
        Fragmented,
        TooBig,
        InvalidUtf8,
    }

    private static (byte[] Bytes, FrameKind Kind) NextFrame(Random random, string[] rooms)
    {
        var roll = random.Next(100);
        return roll switch
        {
            < 25 => (Encoding.UTF8.GetBytes(Valid(random, rooms)), FrameKind.Text),
            < 50 => (Mutate(random, Encoding.UTF8.GetBytes(Valid(random, rooms))), FrameKind.Text),
            < 65 => (Encoding.UTF8.GetBytes(Soup(random)), FrameKind.Text),
            < 75 => (Encoding.UTF8.GetBytes(WrongTypes(random)), FrameKind.Text),
            < 80 => (Encoding.UTF8.GetBytes(Deep(random)), FrameKind.Text),
            < 85 => (Encoding.UTF8.GetBytes(Valid(random, rooms)), FrameKind.Binary),
            < 95 => (Encoding.UTF8.GetBytes(Valid(random, rooms)), FrameKind.Fragmented),
            < 97 => (Encoding.UTF8.GetBytes($$"""{"type":"sendMessage","text":"{{new string('x', 17_000)}}"}"""), FrameKind.TooBig),
            _ => ([.. """{"type":"sendMessage","text":"""u8, (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)'}'], FrameKind.InvalidUtf8),
        };
    }

    private static string Valid(Random random, string[] rooms)
    {
        var room = rooms[random.Next(rooms.Length)];
        var id = random.Next(3) switch { 0 => "", 1 => $"\"id\":{random.Next()},", _ => $"\"id\":\"r{random.Next()}\"," };
        return random.Next(4) switch
        {
            0 => $$"""{"type":"signin",{{id}}"user":"u{{random.Next(100)}}","room":"{{room}}"}""",
            1 => $$"""{"type":"updateSocketId",{{id}}"user":"u{{random.Next(100)}}","room":"{{room}}","since":{{random.Next(5)}}}""",
            _ => $$"""{"type":"sendMessage",{{id}}"text":"hello {{random.Next()}}"}""",
        };
    }

    private static byte[] Mutate(Random random, byte[] bytes)
    {
        var list = bytes.ToList();
        for (var n = random.Next(1, 4); n > 0 && list.Count > 0; n--)
        {
            var at = random.Next(list.Count);
            switch (random.Next(4))
            {
                case 0: list.RemoveAt(at); break;
                case 1: list.Insert(at, (byte)Punctuation[random.Next(Punctuation.Length)]); break;
                case 2: list[at] = (byte)random.Next(0x20, 0x7F); break;
                default: list.RemoveRange(at, list.Count - at); break;   // truncate
            }
        }

        return [.. list];
    }

    private static string Soup(Random random) =>
        string.Concat(Enumerable.Range(0, random.Next(1, 12)).Select(_ => s_fragments[random.Next(s_fragments.Length)]));

    private static string WrongTypes(Random random)
    {
        string[] values = ["null", "1", "-5", "1.5", "1e400", "\"\"", "\"  \"", "[]", "{}", "true", "\"\\u0007\"", "\"\\ud800\"",
            "123456789012345678901234567890", $"\"{new string('u', 40)}\""];
        string Pick() => values[random.Next(values.Length)];
        string[] types = ["\"signin\"", "\"sendMessage\"", "\"updateSocketId\"", "\"nope\"", Pick()];
        return $$"""{"type":{{types[random.Next(types.Length)]}},"id":{{Pick()}},"user":{{Pick()}},"room":{{Pick()}},"text":{{Pick()}},"since":{{Pick()}},"epoch":{{Pick()}}}""";
    }

    private static string Deep(Random random)
    {
        var depth = random.Next(50, 300);
        return $$"""{"type":"signin","user":{{new string('[', depth)}}{{new string(']', depth)}},"room":"r"}""";
    }

    private static async Task SendFragmentedAsync(ChatClient client, byte[] bytes, Random random, CancellationToken cancellationToken)
    {
        // Cut points strictly inside the message: a cut at the very end would add an empty extra message.
        var cuts = Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(bytes.Length)).Order().Distinct().ToList();
        var start = 0;
        foreach (var cut in cuts.Append(bytes.Length))
        {
            await client.SendFragmentAsync(bytes.AsMemory(start, cut - start), endOfMessage: cut == bytes.Length, cancellationToken);
            start = cut;
        }
    }
}
