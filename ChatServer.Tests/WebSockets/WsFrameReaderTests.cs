using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using ChatServer.WebSockets;

namespace ChatServer.Tests.WebSockets;

public sealed class WsFrameReaderTests
{
    private const int Max = 64 * 1024;
    private static readonly byte[] Key = [0x37, 0xfa, 0x21, 0x3d];

    // RFC 6455 §5.7: "A single-frame masked text message" ("Hello").
    private static readonly byte[] MaskedHello = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];

    // RFC 6455 §5.7: the masked Ping response, a Pong carrying "Hello".
    private static readonly byte[] MaskedPongHello = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];

    // ---- the reference encoder and the pipe the tests feed the reader through ----

    /// <summary>A client frame, masked as RFC 6455 §5.3 says, written the plain way (byte by byte) to check the reader against.</summary>
    private static byte[] ClientFrame(WsOpcode opcode, ReadOnlySpan<byte> payload, bool fin = true, byte[]? key = null,
        int rsv = 0, bool masked = true, bool force64 = false, int? declaredLength = null)
    {
        key ??= Key;
        var length = declaredLength ?? payload.Length;
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | (rsv << 4) | (int)opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (force64 || length > 65535)
        {
            frame.Add((byte)(maskBit | 127));
            var bytes = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)length);
            frame.AddRange(bytes);
        }
        else if (length > 125)
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(length >> 8));
            frame.Add((byte)length);
        }
        else
        {
            frame.Add((byte)(maskBit | length));
        }

        if (masked)
        {
            frame.AddRange(key);
        }

        for (var i = 0; i < payload.Length; i++)
        {
            frame.Add(masked ? (byte)(payload[i] ^ key[i % 4]) : payload[i]);
        }

        return [.. frame];
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(part => part)];

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }

    /// <summary>
    /// <paramref name="data"/> as a sequence of segments of the given lengths (the last takes the rest), each its own
    /// array as a pipe's would be.
    /// </summary>
    private static ReadOnlySequence<byte> Sequence(ReadOnlySpan<byte> data, params int[] segmentLengths)
    {
        Segment? first = null, last = null;
        var at = 0;
        foreach (var length in segmentLengths.Append(data.Length))
        {
            var take = Math.Min(length, data.Length - at);
            last = new Segment(data.Slice(at, take).ToArray(), last);
            first ??= last;
            at += take;
            if (at == data.Length)
            {
                break;
            }
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>One segment per byte: the most a sequence can be split.</summary>
    private static ReadOnlySequence<byte> Bytewise(byte[] data) => Sequence(data, [.. Enumerable.Repeat(1, data.Length)]);

    /// <summary>What the reader reported, with the payload copied out (it is valid only until the next call).</summary>
    private sealed record Event(WsReadResult Result, string Detail)
    {
        public override string ToString() => $"{Result} {Detail}";
    }

    private static Event Capture(WsFrameReader reader, WsReadResult result) => result switch
    {
        WsReadResult.Message => new(result, $"{reader.MessageType} {Hex(reader.Payload.Span)}"),
        WsReadResult.Ping or WsReadResult.Pong => new(result, Hex(reader.Payload.Span)),
        WsReadResult.Close => new(result, $"{reader.CloseCode?.ToString() ?? "null"} '{reader.CloseReason}'"),
        WsReadResult.Error => new(result, reader.ErrorCode.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        _ => new(result, ""),
    };

    /// <summary>A payload as text to compare: hex when short, its length and hash when long (so a failure stays readable).</summary>
    private static string Hex(ReadOnlySpan<byte> payload) => payload.Length <= 64
        ? Convert.ToHexString(payload)
        : $"{payload.Length} bytes, SHA-256 {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(payload))}";

    private static Event Message(WsOpcode type, byte[] payload) => new(WsReadResult.Message, $"{type} {Hex(payload)}");

    private static Event Text(string text) => Message(WsOpcode.Text, Utf8(text));

    private static Event Error(int code) => new(WsReadResult.Error, code.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// Feeds <paramref name="stream"/> to a reader the way a pipe would: it arrives in chunks, the unconsumed bytes stay
    /// and are presented again with the next chunk (split into segments by <paramref name="segments"/>), and the reader is
    /// called until it needs more. Stops at the first Error. Returns every event.
    /// </summary>
    private static List<Event> Decode(byte[] stream, IEnumerable<int> chunks, Func<int, int[]>? segments = null, int max = Max)
    {
        using var reader = new WsFrameReader(max);
        var events = new List<Event>();
        var pending = new List<byte>();
        var at = 0;
        using var chunk = chunks.GetEnumerator();
        while (at < stream.Length || pending.Count > 0)
        {
            if (at < stream.Length)
            {
                var take = chunk.MoveNext() ? Math.Min(chunk.Current, stream.Length - at) : stream.Length - at;
                pending.AddRange(stream.AsSpan(at, take));
                at += take;
            }

            while (true)
            {
                var data = CollectionsMarshal.AsSpan(pending);
                var sequence = Sequence(data, segments?.Invoke(data.Length) ?? []);
                var result = reader.TryRead(sequence, out var consumed);
                Assert.That(consumed, Is.InRange(0, data.Length));
                if (result != WsReadResult.NeedMoreData)
                {
                    events.Add(Capture(reader, result));
                }

                if (result == WsReadResult.Error)
                {
                    return events;
                }

                pending.RemoveRange(0, (int)consumed);
                if (result == WsReadResult.NeedMoreData)
                {
                    break;
                }
            }

            if (at == stream.Length && pending.Count > 0)
            {
                Assert.That(reader.TryRead(Sequence(CollectionsMarshal.AsSpan(pending)), out _), Is.EqualTo(WsReadResult.NeedMoreData));
                break;
            }
        }

        return events;
    }

    private static List<Event> DecodeWhole(byte[] stream, int max = Max) => Decode(stream, [stream.Length], max: max);

    private static WsFrameReader ReadOne(byte[] stream, out WsReadResult result, out long consumed, int max = Max)
    {
        var reader = new WsFrameReader(max);
        result = reader.TryRead(new ReadOnlySequence<byte>(stream), out consumed);
        return reader;
    }

    // ---- RFC 6455 §5.7 examples ----

    [Test]
    public void The_rfc_masked_Hello_is_a_text_message()
    {
        using var reader = ReadOne(MaskedHello, out var result, out var consumed);

        Assert.That(result, Is.EqualTo(WsReadResult.Message));
        Assert.That(consumed, Is.EqualTo(11));
        Assert.That(reader.MessageType, Is.EqualTo(WsOpcode.Text));
        Assert.That(Encoding.UTF8.GetString(reader.Payload.Span), Is.EqualTo("Hello"));
    }

    [Test]
    public void An_empty_first_fragment_leaves_no_buffer_but_the_reader_is_not_idle_until_the_message_ends()
    {
        using var reader = new WsFrameReader(1024);
        var first = ClientFrame(WsOpcode.Text, [], fin: false);
        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(first), out var consumed), Is.EqualTo(WsReadResult.NeedMoreData));
        Assert.That((consumed, reader.HoldsBuffer, reader.IsIdle), Is.EqualTo((first.Length, false, false)));

        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(ClientFrame(WsOpcode.Continuation, "abc"u8)), out _), Is.EqualTo(WsReadResult.Message));
        Assert.That(Encoding.UTF8.GetString(reader.Payload.Span), Is.EqualTo("abc"));
        Assert.That(reader.TryRead(ReadOnlySequence<byte>.Empty, out _), Is.EqualTo(WsReadResult.NeedMoreData));
        Assert.That(reader.IsIdle, Is.True);
    }

    [Test]
    public void The_reference_encoder_writes_the_rfc_masked_Hello() =>
        Assert.That(ClientFrame(WsOpcode.Text, "Hello"u8), Is.EqualTo(MaskedHello));

    [Test]
    public void The_rfc_masked_pong_carries_Hello()
    {
        using var reader = ReadOne(MaskedPongHello, out var result, out var consumed);

        Assert.That(result, Is.EqualTo(WsReadResult.Pong));
        Assert.That(consumed, Is.EqualTo(11));
        Assert.That(Encoding.UTF8.GetString(reader.Payload.Span), Is.EqualTo("Hello"));
    }

    [Test]
    public void The_rfc_fragmented_Hel_lo_is_one_message_and_the_first_fragment_is_consumed_alone()
    {
        // RFC 6455 §5.7: "A fragmented unmasked text message" 0x01 0x03 "Hel", 0x80 0x02 "lo"; masked, as a client sends it.
        var hel = ClientFrame(WsOpcode.Text, "Hel"u8, fin: false);
        var lo = ClientFrame(WsOpcode.Continuation, "lo"u8);
        Assert.That(hel[..2], Is.EqualTo(new byte[] { 0x01, 0x83 }));
        Assert.That(lo[..2], Is.EqualTo(new byte[] { 0x80, 0x82 }));
        using var reader = new WsFrameReader(Max);

        var first = reader.TryRead(new ReadOnlySequence<byte>(hel), out var consumed);
        Assert.That(first, Is.EqualTo(WsReadResult.NeedMoreData));
        Assert.That(consumed, Is.EqualTo(hel.Length), "a fragment is taken in even though it is not an event yet");
        Assert.That(reader.HoldsBuffer, Is.True, "the fragment is kept while the message is assembled");

        var second = reader.TryRead(new ReadOnlySequence<byte>(lo), out consumed);
        Assert.That(second, Is.EqualTo(WsReadResult.Message));
        Assert.That(consumed, Is.EqualTo(lo.Length));
        Assert.That(reader.MessageType, Is.EqualTo(WsOpcode.Text));
        Assert.That(Encoding.UTF8.GetString(reader.Payload.Span), Is.EqualTo("Hello"));
    }

    [Test]
    public void Both_rfc_fragments_in_one_buffer_are_one_message() =>
        Assert.That(DecodeWhole(Concat(ClientFrame(WsOpcode.Text, "Hel"u8, fin: false), ClientFrame(WsOpcode.Continuation, "lo"u8))),
            Is.EqualTo(new[] { Text("Hello") }));

    [Test]
    public void A_256_byte_binary_message_uses_the_16_bit_length()
    {
        var payload = new byte[256];
        new Random(256).NextBytes(payload);
        var frame = ClientFrame(WsOpcode.Binary, payload);
        Assert.That(frame[..4], Is.EqualTo(new byte[] { 0x82, 0xFE, 0x01, 0x00 }));

        using var reader = ReadOne(frame, out var result, out var consumed);

        Assert.That(result, Is.EqualTo(WsReadResult.Message));
        Assert.That(consumed, Is.EqualTo(4 + 4 + 256));
        Assert.That(reader.MessageType, Is.EqualTo(WsOpcode.Binary));
        Assert.That(reader.Payload.ToArray(), Is.EqualTo(payload));
    }

    [Test]
    public void A_64_KiB_binary_message_uses_the_64_bit_length()
    {
        var payload = new byte[65536];
        new Random(65536).NextBytes(payload);
        var frame = ClientFrame(WsOpcode.Binary, payload);
        Assert.That(frame[..10], Is.EqualTo(new byte[] { 0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 }));

        using var reader = ReadOne(frame, out var result, out var consumed, max: 65536);

        Assert.That(result, Is.EqualTo(WsReadResult.Message));
        Assert.That(consumed, Is.EqualTo(10 + 4 + 65536));
        Assert.That(reader.Payload.ToArray(), Is.EqualTo(payload));
    }

    [Test]
    public void A_non_minimal_64_bit_length_is_accepted()
    {
        var frame = ClientFrame(WsOpcode.Text, "Hello"u8, force64: true);
        Assert.That(DecodeWhole(frame), Is.EqualTo(new[] { Text("Hello") }));
    }

    // ---- splitting ----

    [Test]
    public void Masked_Hello_split_into_two_segments_at_every_position_decodes_the_same()
    {
        for (var cut = 0; cut <= MaskedHello.Length; cut++)
        {
            using var reader = new WsFrameReader(Max);
            var result = reader.TryRead(Sequence(MaskedHello, cut), out var consumed);
            Assert.That(Capture(reader, result), Is.EqualTo(Text("Hello")), $"cut at {cut}");
            Assert.That(consumed, Is.EqualTo(11));
        }
    }

    [Test]
    public void Masked_Hello_arriving_in_two_reads_at_every_position_needs_more_data_then_decodes()
    {
        for (var cut = 0; cut < MaskedHello.Length; cut++)
        {
            using var reader = new WsFrameReader(Max);
            Assert.That(reader.TryRead(new ReadOnlySequence<byte>(MaskedHello, 0, cut), out var consumed), Is.EqualTo(WsReadResult.NeedMoreData), $"cut at {cut}");
            Assert.That(consumed, Is.Zero, "nothing of an incomplete frame is consumed");
            Assert.That(reader.HoldsBuffer, Is.False);

            var result = reader.TryRead(new ReadOnlySequence<byte>(MaskedHello), out consumed);
            Assert.That(Capture(reader, result), Is.EqualTo(Text("Hello")), $"cut at {cut}");
            Assert.That(consumed, Is.EqualTo(11));
        }
    }

    private static readonly byte[] Conversation = Concat(
        ClientFrame(WsOpcode.Text, "Hel"u8, fin: false, key: [1, 2, 3, 4]),
        ClientFrame(WsOpcode.Ping, "ping!"u8, key: [5, 6, 7, 8]),
        ClientFrame(WsOpcode.Continuation, "lo, "u8, fin: false, key: [9, 10, 11, 12]),
        ClientFrame(WsOpcode.Continuation, "wörld"u8, key: [13, 14, 15, 16]),
        ClientFrame(WsOpcode.Binary, Enumerable.Range(0, 300).Select(i => (byte)i).ToArray(), key: [0xde, 0xad, 0xbe, 0xef]),
        ClientFrame(WsOpcode.Text, []),
        ClientFrame(WsOpcode.Pong, []),
        ClientFrame(WsOpcode.Close, [0x03, 0xE8, (byte)'o', (byte)'k']));

    private static readonly Event[] ConversationEvents =
    [
        new(WsReadResult.Ping, Hex("ping!"u8)),
        Text("Hello, wörld"),
        Message(WsOpcode.Binary, Enumerable.Range(0, 300).Select(i => (byte)i).ToArray()),
        Text(""),
        new(WsReadResult.Pong, ""),
        new(WsReadResult.Close, "1000 'ok'"),
    ];

    [Test]
    public void A_conversation_decodes_whole_and_in_one_byte_segments()
    {
        Assert.That(DecodeWhole(Conversation), Is.EqualTo(ConversationEvents));
        Assert.That(Decode(Conversation, [Conversation.Length], length => [.. Enumerable.Repeat(1, length)]), Is.EqualTo(ConversationEvents));
    }

    [Test]
    public void A_conversation_split_into_two_segments_at_every_position_decodes_the_same()
    {
        for (var cut = 0; cut <= Conversation.Length; cut++)
        {
            Assert.That(Decode(Conversation, [Conversation.Length], _ => [cut]), Is.EqualTo(ConversationEvents), $"cut at {cut}");
        }
    }

    [Test]
    public void A_conversation_arriving_in_two_reads_at_every_position_decodes_the_same()
    {
        for (var cut = 0; cut <= Conversation.Length; cut++)
        {
            Assert.That(Decode(Conversation, [cut]), Is.EqualTo(ConversationEvents), $"cut at {cut}");
        }
    }

    [Test]
    public void A_conversation_arriving_a_byte_at_a_time_decodes_the_same() =>
        Assert.That(Decode(Conversation, Enumerable.Repeat(1, Conversation.Length)), Is.EqualTo(ConversationEvents));

    [Test]
    public void A_64_bit_length_split_across_segments_at_every_position_decodes_the_same()
    {
        var payload = new byte[70000];
        new Random(7).NextBytes(payload);
        var frame = ClientFrame(WsOpcode.Binary, payload, key: [0x11, 0x22, 0x33, 0x44]);
        for (var cut = 0; cut <= 20; cut++)
        {
            using var reader = new WsFrameReader(100_000);
            Assert.That(reader.TryRead(Sequence(frame, cut), out var consumed), Is.EqualTo(WsReadResult.Message), $"cut at {cut}");
            Assert.That(consumed, Is.EqualTo(frame.Length));
            Assert.That(reader.Payload.Span.SequenceEqual(payload), Is.True, $"cut at {cut}");
        }
    }

    [Test]
    public void Several_frames_in_one_buffer_come_out_one_per_call()
    {
        var stream = Concat(MaskedHello, MaskedPongHello, MaskedHello);
        using var reader = new WsFrameReader(Max);
        var buffer = new ReadOnlySequence<byte>(stream);

        Assert.That(reader.TryRead(buffer, out var consumed), Is.EqualTo(WsReadResult.Message));
        Assert.That(consumed, Is.EqualTo(11));
        buffer = buffer.Slice(consumed);
        Assert.That(reader.TryRead(buffer, out consumed), Is.EqualTo(WsReadResult.Pong));
        Assert.That(consumed, Is.EqualTo(11));
        buffer = buffer.Slice(consumed);
        Assert.That(reader.TryRead(buffer, out consumed), Is.EqualTo(WsReadResult.Message));
        Assert.That(consumed, Is.EqualTo(11));
        Assert.That(reader.TryRead(buffer.Slice(consumed), out consumed), Is.EqualTo(WsReadResult.NeedMoreData));
        Assert.That(consumed, Is.Zero);
    }

    // ---- unmasking ----

    [Test]
    public void Unmasking_matches_the_byte_by_byte_xor_at_every_length_and_key_phase()
    {
        var random = new Random(5);
        for (var length = 0; length <= 200; length++)
        {
            var source = new byte[length];
            random.NextBytes(source);
            var key = new byte[4];
            random.NextBytes(key);
            var destination = new byte[length];

            WsFrameReader.UnmaskSpan(source, MemoryMarshal.Read<uint>(key), destination);

            var expected = source.Select((b, i) => (byte)(b ^ key[i % 4])).ToArray();
            Assert.That(destination, Is.EqualTo(expected), $"length {length}");
        }
    }

    [Test]
    public void The_input_is_not_changed_and_the_payload_is_a_copy()
    {
        var input = (byte[])MaskedHello.Clone();
        using var reader = ReadOne(input, out var result, out _);

        Assert.That(result, Is.EqualTo(WsReadResult.Message));
        Assert.That(input, Is.EqualTo(MaskedHello));
        Assert.That(MemoryMarshal.TryGetArray(reader.Payload, out var segment), Is.True);
        Assert.That(segment.Array, Is.Not.SameAs(input));
    }

    // ---- rules: each violation fails the connection with its code ----

    [TestCase(0x4, TestName = "RSV1 set is a protocol error")]
    [TestCase(0x2, TestName = "RSV2 set is a protocol error")]
    [TestCase(0x1, TestName = "RSV3 set is a protocol error")]
    public void Reserved_bits(int rsv)
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Text, "Hello"u8, rsv: rsv), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("RSV"));
    }

    [TestCase(3)]
    [TestCase(4)]
    [TestCase(5)]
    [TestCase(6)]
    [TestCase(7)]
    [TestCase(0xB)]
    [TestCase(0xC)]
    [TestCase(0xD)]
    [TestCase(0xE)]
    [TestCase(0xF)]
    public void A_reserved_opcode_is_a_protocol_error(int opcode)
    {
        using var reader = ReadOne(ClientFrame((WsOpcode)opcode, "x"u8), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("reserved"));
    }

    [Test]
    public void An_unmasked_client_frame_is_a_protocol_error()
    {
        // The RFC's unmasked "Hello": what a server sends, never a client.
        using var reader = ReadOne([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("masked"));
    }

    [TestCase((int)WsOpcode.Ping)]
    [TestCase((int)WsOpcode.Pong)]
    [TestCase((int)WsOpcode.Close)]
    public void A_fragmented_control_frame_is_a_protocol_error(int opcodeValue)
    {
        var opcode = (WsOpcode)opcodeValue;
        using var reader = ReadOne(ClientFrame(opcode, [0x03, 0xE8], fin: false), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("FIN"));
    }

    [TestCase((int)WsOpcode.Ping)]
    [TestCase((int)WsOpcode.Pong)]
    [TestCase((int)WsOpcode.Close)]
    public void A_control_frame_over_125_bytes_is_a_protocol_error_from_its_header_alone(int opcodeValue)
    {
        var opcode = (WsOpcode)opcodeValue;
        var frame = ClientFrame(opcode, new byte[126]);
        using var reader = new WsFrameReader(Max);
        var result = reader.TryRead(new ReadOnlySequence<byte>(frame, 0, 2), out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("125"));
    }

    [Test]
    public void A_ping_of_exactly_125_bytes_is_read()
    {
        var payload = Enumerable.Range(0, 125).Select(i => (byte)(i * 7)).ToArray();
        Assert.That(DecodeWhole(ClientFrame(WsOpcode.Ping, payload)), Is.EqualTo(new[] { new Event(WsReadResult.Ping, Hex(payload)) }));
    }

    [Test]
    public void A_64_bit_length_with_its_top_bit_set_is_a_protocol_error()
    {
        byte[] header = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
        using var reader = ReadOne(header, out var result, out _, max: int.MaxValue);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("64-bit"));
    }

    [Test]
    public void A_continuation_with_no_message_in_progress_is_a_protocol_error()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Continuation, "lo"u8), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("Continuation"));
    }

    [Test]
    public void A_continuation_after_a_finished_message_is_a_protocol_error() =>
        Assert.That(DecodeWhole(Concat(MaskedHello, ClientFrame(WsOpcode.Continuation, "!"u8))), Is.EqualTo(new[] { Text("Hello"), Error(1002) }));

    [TestCase((int)WsOpcode.Text)]
    [TestCase((int)WsOpcode.Binary)]
    public void A_new_data_frame_while_a_message_is_in_progress_is_a_protocol_error(int opcodeValue)
    {
        var opcode = (WsOpcode)opcodeValue;
        var stream = Concat(ClientFrame(WsOpcode.Text, "Hel"u8, fin: false), ClientFrame(opcode, "lo"u8));
        using var reader = new WsFrameReader(Max);
        var result = reader.TryRead(new ReadOnlySequence<byte>(stream), out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain("in progress"));
        Assert.That(reader.HoldsBuffer, Is.False, "the partial message is released on failure");
    }

    [Test]
    public void Control_frames_between_fragments_are_events_and_the_partial_message_is_kept()
    {
        var stream = Concat(
            ClientFrame(WsOpcode.Binary, [1, 2, 3], fin: false),
            ClientFrame(WsOpcode.Ping, "p"u8),
            ClientFrame(WsOpcode.Continuation, [4, 5], fin: false),
            ClientFrame(WsOpcode.Pong, "q"u8),
            ClientFrame(WsOpcode.Close, []),
            ClientFrame(WsOpcode.Continuation, [6]));

        Assert.That(DecodeWhole(stream), Is.EqualTo(new[]
        {
            new Event(WsReadResult.Ping, "70"),
            new Event(WsReadResult.Pong, "71"),
            new Event(WsReadResult.Close, "null ''"),
            Message(WsOpcode.Binary, [1, 2, 3, 4, 5, 6]),
        }));
    }

    [Test]
    public void A_ping_between_fragments_does_not_disturb_the_message_buffer()
    {
        using var reader = new WsFrameReader(Max);
        var fragment = ClientFrame(WsOpcode.Text, "Hel"u8, fin: false);
        var ping = ClientFrame(WsOpcode.Ping, "ping"u8);
        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(Concat(fragment, ping)), out var consumed), Is.EqualTo(WsReadResult.Ping));
        Assert.That(consumed, Is.EqualTo(fragment.Length + ping.Length));
        Assert.That(Encoding.UTF8.GetString(reader.Payload.Span), Is.EqualTo("ping"));

        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(ClientFrame(WsOpcode.Continuation, "lo"u8)), out _), Is.EqualTo(WsReadResult.Message));
        Assert.That(Encoding.UTF8.GetString(reader.Payload.Span), Is.EqualTo("Hello"));
    }

    [Test]
    public void A_frame_over_the_limit_fails_from_its_header_before_its_payload()
    {
        var frame = ClientFrame(WsOpcode.Binary, new byte[1001]);
        using var reader = new WsFrameReader(1000);

        var result = reader.TryRead(new ReadOnlySequence<byte>(frame, 0, 4), out _);

        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1009));
        Assert.That(reader.HoldsBuffer, Is.False);
    }

    [Test]
    public void A_huge_64_bit_length_fails_from_its_header() =>
        Assert.That(DecodeWhole([0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), Is.EqualTo(new[] { Error(1009) }));

    [Test]
    public void A_message_of_exactly_the_limit_is_read()
    {
        var payload = new byte[1000];
        payload.AsSpan().Fill(0x5A);
        Assert.That(DecodeWhole(Concat(ClientFrame(WsOpcode.Binary, payload.AsSpan(0, 600), fin: false), ClientFrame(WsOpcode.Continuation, payload.AsSpan(600))), max: 1000),
            Is.EqualTo(new[] { Message(WsOpcode.Binary, payload) }));
    }

    [Test]
    public void Fragments_adding_up_past_the_limit_fail_at_the_header_of_the_one_that_breaks_it()
    {
        var first = ClientFrame(WsOpcode.Binary, new byte[600], fin: false);
        var second = ClientFrame(WsOpcode.Continuation, new byte[401]);
        using var reader = new WsFrameReader(1000);

        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(first), out _), Is.EqualTo(WsReadResult.NeedMoreData));
        var result = reader.TryRead(new ReadOnlySequence<byte>(second, 0, 4), out _);

        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1009));
        Assert.That(reader.HoldsBuffer, Is.False, "the partial message is released on failure");
    }

    [Test]
    public void Control_frames_do_not_count_toward_the_message_limit()
    {
        var stream = Concat(
            ClientFrame(WsOpcode.Text, "abcd"u8, fin: false),
            ClientFrame(WsOpcode.Ping, new byte[100]),
            ClientFrame(WsOpcode.Continuation, "e"u8));
        Assert.That(DecodeWhole(stream, max: 5), Is.EqualTo(new[] { new Event(WsReadResult.Ping, Hex(new byte[100])), Text("abcde") }));
    }

    [Test]
    public void A_text_message_that_is_not_utf8_is_error_1007()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Text, [0x48, 0xC3, 0x28]), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1007));
        Assert.That(reader.ErrorReason, Does.Contain("UTF-8"));
        Assert.That(reader.HoldsBuffer, Is.False);
    }

    [Test]
    public void A_text_message_ending_inside_a_character_is_error_1007() =>
        Assert.That(DecodeWhole(Concat(ClientFrame(WsOpcode.Text, [0x61, 0xC3], fin: false), ClientFrame(WsOpcode.Continuation, []))),
            Is.EqualTo(new[] { Error(1007) }));

    [Test]
    public void A_character_split_across_fragments_is_valid_utf8()
    {
        var euro = Utf8("€");   // E2 82 AC
        var stream = Concat(ClientFrame(WsOpcode.Text, euro.AsSpan(0, 1), fin: false), ClientFrame(WsOpcode.Continuation, euro.AsSpan(1, 1), fin: false),
            ClientFrame(WsOpcode.Continuation, euro.AsSpan(2)));
        Assert.That(DecodeWhole(stream), Is.EqualTo(new[] { Text("€") }));
    }

    [Test]
    public void A_binary_message_is_not_checked_for_utf8() =>
        Assert.That(DecodeWhole(ClientFrame(WsOpcode.Binary, [0xC3, 0x28, 0xFF])), Is.EqualTo(new[] { Message(WsOpcode.Binary, [0xC3, 0x28, 0xFF]) }));

    [Test]
    public void An_empty_text_message_is_a_message_with_an_empty_payload()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Text, []), out var result, out var consumed);
        Assert.That(result, Is.EqualTo(WsReadResult.Message));
        Assert.That(consumed, Is.EqualTo(6));
        Assert.That(reader.MessageType, Is.EqualTo(WsOpcode.Text));
        Assert.That(reader.Payload.IsEmpty, Is.True);
        Assert.That(reader.HoldsBuffer, Is.False, "nothing to rent for nothing");
    }

    [Test]
    public void An_empty_message_of_empty_fragments_is_a_message() =>
        Assert.That(DecodeWhole(Concat(ClientFrame(WsOpcode.Binary, [], fin: false), ClientFrame(WsOpcode.Continuation, []))),
            Is.EqualTo(new[] { Message(WsOpcode.Binary, []) }));

    // ---- Close ----

    [Test]
    public void An_empty_close_has_no_code()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Close, []), out var result, out var consumed);
        Assert.That(result, Is.EqualTo(WsReadResult.Close));
        Assert.That(consumed, Is.EqualTo(6));
        Assert.That(reader.CloseCode, Is.Null);
        Assert.That(reader.CloseReason, Is.Empty);
    }

    [Test]
    public void A_close_carries_its_code_and_reason()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Close, [0x0F, 0xA1, .. Utf8("gone ☕")]), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Close));
        Assert.That(reader.CloseCode, Is.EqualTo(4001));
        Assert.That(reader.CloseReason, Is.EqualTo("gone ☕"));
    }

    [Test]
    public void A_close_with_a_code_and_no_reason_has_an_empty_reason() =>
        Assert.That(DecodeWhole(ClientFrame(WsOpcode.Close, [0x03, 0xE9])), Is.EqualTo(new[] { new Event(WsReadResult.Close, "1001 ''") }));

    [Test]
    public void A_close_of_one_byte_is_a_protocol_error()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Close, [0x03]), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
    }

    [TestCase(0)]
    [TestCase(999)]
    [TestCase(1004)]
    [TestCase(1005)]
    [TestCase(1006)]
    [TestCase(1015)]
    [TestCase(1016)]
    [TestCase(2999)]
    [TestCase(5000)]
    [TestCase(65535)]
    public void A_close_code_a_peer_may_not_send_is_a_protocol_error(int code)
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Close, [(byte)(code >> 8), (byte)code]), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
        Assert.That(reader.ErrorReason, Does.Contain(code.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [TestCase(1000)]
    [TestCase(1003)]
    [TestCase(1007)]
    [TestCase(1014)]
    [TestCase(3000)]
    [TestCase(4999)]
    public void A_close_code_a_peer_may_send_is_read(int code) =>
        Assert.That(DecodeWhole(ClientFrame(WsOpcode.Close, [(byte)(code >> 8), (byte)code])),
            Is.EqualTo(new[] { new Event(WsReadResult.Close, $"{code} ''") }));

    [Test]
    public void A_close_reason_that_is_not_utf8_is_error_1007()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Close, [0x03, 0xE8, 0xFF, 0xFE]), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));
        Assert.That(reader.ErrorCode, Is.EqualTo(1007));
        Assert.That(reader.ErrorReason, Does.Contain("UTF-8"));
    }

    [Test]
    public void A_close_reason_cut_by_the_writer_is_read_back_whole()
    {
        var server = WsFrame.Close(1001, new string('é', 100));
        var reason = server.AsSpan(4);
        Assert.That(reason.Length, Is.EqualTo(122));
        Assert.That(DecodeWhole(ClientFrame(WsOpcode.Close, server.AsSpan(2))),
            Is.EqualTo(new[] { new Event(WsReadResult.Close, $"1001 '{new string('é', 61)}'") }));
    }

    // ---- lifetime and memory ----

    [Test]
    public void After_an_error_the_reader_answers_error_and_consumes_nothing()
    {
        using var reader = ReadOne(ClientFrame(WsOpcode.Continuation, []), out var result, out _);
        Assert.That(result, Is.EqualTo(WsReadResult.Error));

        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(MaskedHello), out var consumed), Is.EqualTo(WsReadResult.Error));
        Assert.That(consumed, Is.Zero);
        Assert.That(reader.ErrorCode, Is.EqualTo(1002));
    }

    [Test]
    public void An_idle_reader_holds_no_buffer()
    {
        using var reader = new WsFrameReader(Max);
        Assert.That(reader.HoldsBuffer, Is.False, "new");

        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(MaskedHello), out _), Is.EqualTo(WsReadResult.Message));
        Assert.That(reader.HoldsBuffer, Is.True, "while the message is handed out");

        Assert.That(reader.TryRead(ReadOnlySequence<byte>.Empty, out _), Is.EqualTo(WsReadResult.NeedMoreData));
        Assert.That(reader.HoldsBuffer, Is.False, "the next call returns it");
        Assert.That(reader.Payload.IsEmpty, Is.True);

        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(MaskedPongHello), out _), Is.EqualTo(WsReadResult.Pong));
        Assert.That(reader.HoldsBuffer, Is.True, "while the pong's payload is handed out");
        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(MaskedHello, 0, 5), out _), Is.EqualTo(WsReadResult.NeedMoreData));
        Assert.That(reader.HoldsBuffer, Is.False, "half a frame is left in the caller's buffer, not copied");
    }

    [Test]
    public void Dispose_returns_a_partial_message_and_the_reader_cannot_be_used_after()
    {
        var reader = new WsFrameReader(Max);
        Assert.That(reader.TryRead(new ReadOnlySequence<byte>(ClientFrame(WsOpcode.Text, "Hel"u8, fin: false)), out _), Is.EqualTo(WsReadResult.NeedMoreData));
        Assert.That(reader.HoldsBuffer, Is.True);

        reader.Dispose();
        reader.Dispose();

        Assert.That(reader.HoldsBuffer, Is.False);
        Assert.Throws<ObjectDisposedException>(() => reader.TryRead(new ReadOnlySequence<byte>(MaskedHello), out _));
    }

    [Test]
    public void Reading_messages_allocates_nothing_once_the_pool_is_warm()
    {
        var frame = ClientFrame(WsOpcode.Text, Utf8(new string('x', 1000)), key: [1, 2, 3, 4]);
        var sequence = Sequence(frame, 3, 7, 100, 500);
        using var reader = new WsFrameReader(Max);
        for (var i = 0; i < 100; i++)
        {
            reader.TryRead(sequence, out _);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        var messages = 0;
        for (var i = 0; i < 1000; i++)
        {
            if (reader.TryRead(sequence, out _) == WsReadResult.Message)
            {
                messages++;
            }
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(messages, Is.EqualTo(1000));
        Assert.That(allocated, Is.Zero);
    }

    // ---- round trip ----

    private static string RandomText(Random random, int maxChars)
    {
        string[] alphabet = ["a", "Z", " ", "0", "é", "ß", "€", "中", "😀", "\n", "\"", "𝄞"];
        var text = new StringBuilder();
        var count = random.Next(maxChars + 1);
        for (var i = 0; i < count; i++)
        {
            text.Append(alphabet[random.Next(alphabet.Length)]);
        }

        return text.ToString();
    }

    /// <summary>Lengths 0-130 most of the time (around the 7-bit limit), sometimes past 126 and 65535.</summary>
    private static int RandomLength(Random random) => random.Next(10) switch
    {
        < 6 => random.Next(131),
        < 9 => random.Next(126, 1000),
        _ => random.Next(65530, 70000),
    };

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(4)]
    [TestCase(5)]
    [TestCase(6)]
    [TestCase(7)]
    [TestCase(8)]
    public void Random_messages_in_random_fragments_and_segments_decode_back_identically(int seed)
    {
        var random = new Random(seed);
        for (var round = 0; round < 25; round++)
        {
            var stream = new List<byte>();
            var expected = new List<Event>();
            var messages = random.Next(1, 8);
            for (var m = 0; m < messages; m++)
            {
                var isText = random.Next(2) == 0;
                byte[] payload;
                if (isText)
                {
                    payload = Utf8(RandomText(random, RandomLength(random) / 2));
                }
                else
                {
                    payload = new byte[RandomLength(random)];
                    random.NextBytes(payload);
                }

                // Cut into 1-4 fragments anywhere (a UTF-8 character may be split), a control frame sometimes between.
                var cuts = Enumerable.Range(0, random.Next(4)).Select(_ => random.Next(payload.Length + 1)).Order().ToList();
                var pieces = new List<byte[]>();
                var from = 0;
                foreach (var cut in cuts.Append(payload.Length))
                {
                    pieces.Add(payload[from..cut]);
                    from = cut;
                }

                for (var p = 0; p < pieces.Count; p++)
                {
                    var key = new byte[4];
                    random.NextBytes(key);
                    var opcode = p == 0 ? (isText ? WsOpcode.Text : WsOpcode.Binary) : WsOpcode.Continuation;
                    stream.AddRange(ClientFrame(opcode, pieces[p], fin: p == pieces.Count - 1, key: key, force64: random.Next(20) == 0));
                    if (p < pieces.Count - 1 && random.Next(3) == 0)
                    {
                        var control = new byte[random.Next(126)];
                        random.NextBytes(control);
                        random.NextBytes(key);
                        var ping = random.Next(2) == 0;
                        stream.AddRange(ClientFrame(ping ? WsOpcode.Ping : WsOpcode.Pong, control, key: key));
                        expected.Add(new Event(ping ? WsReadResult.Ping : WsReadResult.Pong, Hex(control)));
                    }
                }

                expected.Add(Message(isText ? WsOpcode.Text : WsOpcode.Binary, payload));
            }

            var bytes = stream.ToArray();
            var chunks = Enumerable.Range(0, bytes.Length + 1).Select(_ => random.Next(2) == 0 ? random.Next(1, 20) : random.Next(1, 20000));
            var events = Decode(bytes, chunks, length =>
                [.. Enumerable.Range(0, random.Next(6)).Select(_ => random.Next(0, Math.Max(1, length / 2)))], max: 100_000);

            Assert.That(events, Is.EqualTo(expected), $"seed {seed}, round {round}");
        }
    }
}
