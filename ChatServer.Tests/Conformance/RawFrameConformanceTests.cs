using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace ChatServer.Tests.Conformance;

/// <summary>
/// RFC 6455 framing with the hand-written client (<see cref="RawWebSocket"/>), for what no library sends: control
/// frame rules, broken fragmentation, bad Close payloads, pings and pongs at the byte level, a frame dribbled one byte
/// per TCP write, several frames in one write. (Unmasked frames, reserved bits, opcode 0x3 and the closes with frames in
/// flight are in <c>EndToEnd/CloseFrameTests</c>.)
/// </summary>
public sealed class RawFrameConformanceTests : ConformanceFixture
{
    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static byte[] Concat(params byte[][] frames) => [.. frames.SelectMany(f => f)];

    private static byte[] ClosePayload(ushort status, ReadOnlySpan<byte> reason)
    {
        var payload = new byte[2 + reason.Length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, status);
        reason.CopyTo(payload.AsSpan(2));
        return payload;
    }

    private static readonly byte[] Part = Utf8("""{"type":"sendMessage",""");

    /// <summary>Each: the bytes the client sends and the Close status the server must answer with (and then nothing).</summary>
    private static IEnumerable<TestCaseData> Violations()
    {
        TestCaseData Case(string name, byte[] bytes, int status) => new TestCaseData(bytes, status).SetArgDisplayNames(name);

        yield return Case("Ping with 126 bytes", RawWebSocket.Frame(0x9, new byte[126]), 1002);
        yield return Case("Pong with 126 bytes", RawWebSocket.Frame(0xA, new byte[126]), 1002);
        yield return Case("Close with 126 bytes", RawWebSocket.Frame(0x8, ClosePayload(1000, new byte[124])), 1002);
        yield return Case("Ping with FIN=0", RawWebSocket.Frame(0x9, Utf8("x"), fin: false), 1002);
        yield return Case("Close with FIN=0", RawWebSocket.Frame(0x8, ClosePayload(1000, []), fin: false), 1002);
        yield return Case("continuation with nothing to continue", RawWebSocket.Frame(0x0, Utf8("{}")), 1002);
        yield return Case("Text while a Text is in progress",
            Concat(RawWebSocket.Frame(0x1, Part, fin: false), RawWebSocket.Frame(0x1, Utf8("{}"))), 1002);
        yield return Case("Binary while a Text is in progress",
            Concat(RawWebSocket.Frame(0x1, Part, fin: false), RawWebSocket.Frame(0x2, Utf8("{}"))), 1002);
        yield return Case("reserved control opcode 0xB", RawWebSocket.Frame(0xB, Utf8("x")), 1002);
        yield return Case("Close with a 1-byte payload", RawWebSocket.Frame(0x8, [0x03]), 1002);
        foreach (var code in new ushort[] { 0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535 })
        {
            yield return Case($"Close with code {code}", RawWebSocket.Frame(0x8, ClosePayload(code, Utf8("r"))), 1002);
        }

        // RFC 6455 §8.1 requires failing the connection on a reason that is not UTF-8 but names no code; ASP.NET Core's
        // WebSocket fails it with 1002 (a text message that is not UTF-8 gets 1007).
        yield return Case("Close 1000 with an invalid UTF-8 reason", RawWebSocket.Frame(0x8, ClosePayload(1000, [0x61, 0xFF, 0x62])), 1002);
        yield return Case("Close 1000 with a surrogate in its reason", RawWebSocket.Frame(0x8, ClosePayload(1000, [0xED, 0xA0, 0x80])), 1002);
        yield return Case("invalid UTF-8 split across fragments",
            Concat(RawWebSocket.Frame(0x1, [0x7B, 0xE2], fin: false), RawWebSocket.Frame(0x0, [0x28, 0x7D])), 1007);
    }

    [TestCaseSource(nameof(Violations)), CancelAfter(20_000)]
    public async Task A_framing_violation_is_answered_with_its_Close_then_the_TCP_stream_ends(byte[] bytes, int status,
        CancellationToken cancellationToken)
    {
        await using var client = await SignInAsync(TestNames.Room("conf-raw-violation"), cancellationToken);
        await client.SendRawAsync(bytes, cancellationToken);
        var transcript = await client.ReadToEndAsync(cancellationToken);

        Assert.That(transcript.Problem((ushort)status), Is.Null,
            string.Join(" | ", transcript.Frames.Select(f => f.ToString())));
        Assert.That(transcript.Reset, Is.False, "the stream ends with a FIN after the Close, not a reset");
        Assert.That(transcript.Close!.Masked, Is.False, "a server never masks (RFC 6455 §5.1)");
    }

    /// <summary>Valid Close codes (RFC 6455 §7.4), also one between the fragments of a message: answered with 1000.</summary>
    [TestCase(1000)]
    [TestCase(1001)]
    [TestCase(1003)]
    [TestCase(1011)]
    [TestCase(1014)]
    [TestCase(3000)]
    [TestCase(4999)]
    [CancelAfter(20_000)]
    public async Task A_Close_with_a_valid_code_is_answered_with_1000(int code, CancellationToken cancellationToken)
    {
        await using var client = await SignInAsync(TestNames.Room("conf-raw-close"), cancellationToken);
        await client.SendRawAsync(Concat(RawWebSocket.Frame(0x1, Part, fin: false),
            RawWebSocket.Frame(0x8, ClosePayload((ushort)code, Utf8("good bye ✓")))), cancellationToken);
        var transcript = await client.ReadToEndAsync(cancellationToken);

        Assert.That(transcript.Problem(1000), Is.Null, string.Join(" | ", transcript.Frames.Select(f => f.ToString())));
        Assert.That(transcript.Close!.Payload, Is.EqualTo(new byte[] { 0x03, 0xE8 }), "1000 and no reason");
    }

    [Test, CancelAfter(20_000)]
    public async Task A_Close_without_payload_is_answered_with_1000(CancellationToken cancellationToken)
    {
        await using var client = await SignInAsync(TestNames.Room("conf-raw-close-empty"), cancellationToken);
        await client.SendRawAsync(RawWebSocket.Frame(0x8, []), cancellationToken);
        var transcript = await client.ReadToEndAsync(cancellationToken);

        // RFC 6455 §5.5.1 lets the answer carry a code or not; today's server answers 1000 with no reason.
        Assert.That(transcript.Problem(1000), Is.Null, string.Join(" | ", transcript.Frames.Select(f => f.ToString())));
        Assert.That(transcript.Close!.Payload, Is.EqualTo(new byte[] { 0x03, 0xE8 }));
        Assert.That(transcript.Reset, Is.False);
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(125)]
    [CancelAfter(20_000)]
    public async Task A_Ping_is_answered_with_a_Pong_with_the_same_payload(int length, CancellationToken cancellationToken)
    {
        await using var client = await RawWebSocket.ConnectAsync(Host.WebSocketUri, cancellationToken);
        var payload = Enumerable.Range(0, length).Select(i => (byte)(255 - i)).ToArray();
        await client.SendRawAsync(RawWebSocket.Frame(0x9, payload), cancellationToken);

        var pong = await client.ReadFrameAsync(cancellationToken);
        Assert.That(pong, Is.Not.Null);
        Assert.That((pong!.Opcode, pong.Fin, pong.Rsv, pong.Masked), Is.EqualTo((0xA, true, 0, false)));
        Assert.That(pong.Payload, Is.EqualTo(payload));
    }

    [Test, CancelAfter(20_000)]
    public async Task An_unsolicited_Pong_is_ignored(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-raw-pong");
        await using var client = await RawWebSocket.ConnectAsync(Host.WebSocketUri, cancellationToken);
        await client.SendRawAsync(RawWebSocket.Frame(0xA, Utf8("unsolicited")), cancellationToken);
        await client.SendRawAsync(RawWebSocket.Frame(0xA, []), cancellationToken);
        await client.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = "in", user = "alice", room }), cancellationToken);

        var first = await client.ReadFrameAsync(cancellationToken);
        Assert.That(first, Is.Not.Null);
        Assert.That(first!.Opcode, Is.EqualTo(0x1), first.ToString());   // nothing answers the Pongs: the ack comes first
        var ack = new Frame(first.Text);
        Assert.That((ack.IdJson, ack.Ok, ack.Room), Is.EqualTo(("\"in\"", true, room)), ack.Raw);
    }

    /// <summary>
    /// An empty first fragment, alone in its TCP write, then the rest a moment later: the server must remember that a
    /// message is open between reads even though it holds no bytes of it (found by the fuzz test: 1002 before the fix).
    /// </summary>
    [Test, CancelAfter(20_000)]
    public async Task An_empty_first_fragment_in_its_own_write_is_continued_later(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-raw-empty-fragment");
        await using var client = await RawWebSocket.ConnectAsync(Host.WebSocketUri, cancellationToken);
        await client.SendRawAsync(RawWebSocket.Frame(0x1, [], fin: false), cancellationToken);
        await Task.Delay(100, cancellationToken);
        await client.SendRawAsync(RawWebSocket.Frame(0x0, JsonSerializer.SerializeToUtf8Bytes(new { type = "signin", id = "in", user = "alice", room })),
            cancellationToken);

        var ack = await client.ExpectAsync(f => f.IsAck("in"), cancellationToken);
        Assert.That(new Frame(ack.Text).Ok, Is.True, ack.Text);
    }

    /// <summary>One byte per TCP write, with pauses, through headers with 7-, 16-bit lengths and their masks.</summary>
    [Test, CancelAfter(30_000)]
    public async Task Frames_dribbled_one_byte_per_write_are_handled(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-raw-dribble");
        await using var client = await RawWebSocket.ConnectAsync(Host.WebSocketUri, cancellationToken);
        var text = new string('y', 300);   // a payload over 125 bytes: 16-bit length in the header
        var bytes = Concat(
            RawWebSocket.Text(new { type = "signin", id = "in", user = "alice", room }),
            RawWebSocket.Frame(0x1, JsonSerializer.SerializeToUtf8Bytes(new { type = "sendMessage", id = "m", text }), fin: false),
            RawWebSocket.Frame(0x9, Utf8("mid")),
            RawWebSocket.Frame(0x0, [], fin: true));
        Assert.That(bytes.Length, Is.GreaterThan(350));
        for (var i = 0; i < bytes.Length; i++)
        {
            await client.SendRawAsync(bytes.AsMemory(i, 1), cancellationToken);
            if (i < 40 || i % 10 == 0)
            {
                await Task.Delay(2, cancellationToken);   // lets each byte go out as its own segment
            }
        }

        var ack = await client.ExpectAsync(f => f.IsAck("in"), cancellationToken);
        Assert.That(new Frame(ack.Text).Ok, Is.True, ack.Text);
        var frames = new List<ServerFrame>();
        bool Has(Func<Frame, bool> match) => frames.Any(f => f.Opcode == 0x1 && match(new Frame(f.Text)));
        while (!Has(f => f.IsAck("m")) || !Has(f => f.Type == "message"))   // the message may come before or after its ack
        {
            frames.Add(await client.ReadFrameAsync(cancellationToken) ?? throw new EndOfStreamException());
        }

        Assert.That(frames.Where(f => f.Opcode == 0xA).Select(f => Encoding.UTF8.GetString(f.Payload)), Is.EqualTo(new[] { "mid" }));
        var sent = frames.Where(f => f.Opcode == 0x1).Select(f => new Frame(f.Text)).Single(f => f.IsAck("m"));
        Assert.That((sent.Ok, sent.Seq), Is.EqualTo((true, (long?)1)), sent.Raw);
        var message = frames.Where(f => f.Opcode == 0x1).Select(f => new Frame(f.Text)).Single(f => f.Type == "message");
        Assert.That(message.Text, Is.EqualTo(text));
    }

    [Test, CancelAfter(20_000)]
    public async Task Several_frames_in_one_write_are_all_answered_in_order(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-raw-batch");
        await using var client = await RawWebSocket.ConnectAsync(Host.WebSocketUri, cancellationToken);
        await client.SendRawAsync(Concat(
            RawWebSocket.Text(new { type = "signin", id = "in", user = "alice", room }),
            RawWebSocket.Text(new { type = "sendMessage", id = 1, text = "one" }),
            RawWebSocket.Frame(0x9, Utf8("p")),
            RawWebSocket.Text(new { type = "sendMessage", id = 2, text = "two" }),
            RawWebSocket.Text(new { type = "sendMessage", id = 3, text = "three" })), cancellationToken);

        var acks = new List<Frame>();
        var messages = new List<Frame>();
        var pongs = 0;
        while (acks.Count < 4 || messages.Count < 3)
        {
            var frame = await client.ReadFrameAsync(cancellationToken) ?? throw new EndOfStreamException();
            if (frame.Opcode == 0xA)
            {
                pongs++;
                continue;
            }

            Assert.That(frame.Opcode, Is.EqualTo(0x1), frame.ToString());
            var parsed = new Frame(frame.Text);
            (parsed.Type == "ack" ? acks : parsed.Type == "message" ? messages : []).Add(parsed);
        }

        Assert.That(acks.Select(a => (a.IdJson, a.Ok)), Is.EqualTo(new[] { ("\"in\"", true), ("1", true), ("2", true), ("3", true) }));
        Assert.That(acks.Skip(1).Select(a => a.Seq), Is.EqualTo(new long?[] { 1, 2, 3 }));
        Assert.That(messages.Select(m => (m.Seq, m.Text)), Is.EqualTo(new[] { ((long?)1, "one"), (2, "two"), (3, "three") }));
        Assert.That(pongs, Is.EqualTo(1));
    }

    private async Task<RawWebSocket> SignInAsync(string room, CancellationToken cancellationToken)
    {
        var client = await RawWebSocket.ConnectAsync(Host.WebSocketUri, cancellationToken);
        await client.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = "in", user = "alice", room }), cancellationToken);
        await client.ExpectAsync(f => f.IsAck("in"), cancellationToken);
        return client;
    }
}
