using System.Text;
using System.Text.Unicode;
using ChatServer.WebSockets;

namespace ChatServer.Tests.WebSockets;

public sealed class WsFrameTests
{
    [TestCase(0, 2)]
    [TestCase(125, 2)]
    [TestCase(126, 4)]
    [TestCase(256, 4)]
    [TestCase(65535, 4)]
    [TestCase(65536, 10)]
    [TestCase(int.MaxValue, 10)]
    public void HeaderSize_is_the_shortest_length_encoding(int payloadLength, int expected) =>
        Assert.That(WsFrame.HeaderSize(payloadLength), Is.EqualTo(expected));

    [Test]
    public void HeaderSize_refuses_a_negative_length() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => WsFrame.HeaderSize(-1));

    [Test]
    public void Unmasked_text_Hello_is_the_rfc_example()
    {
        // RFC 6455 §5.7: "A single-frame unmasked text message".
        Assert.That(WsFrame.Text("Hello"u8), Is.EqualTo(new byte[] { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f }));
    }

    [Test]
    public void A_256_byte_binary_header_is_the_rfc_example()
    {
        // RFC 6455 §5.7: "256 bytes binary message in a single unmasked frame": 0x82 0x7E 0x0100.
        var header = new byte[WsFrame.MaxHeaderSize];
        var size = WsFrame.WriteHeader(header, WsOpcode.Binary, 256);
        Assert.That(size, Is.EqualTo(4));
        Assert.That(header[..size], Is.EqualTo(new byte[] { 0x82, 0x7E, 0x01, 0x00 }));
    }

    [Test]
    public void A_64_KiB_binary_header_is_the_rfc_example()
    {
        // RFC 6455 §5.7: "64KiB binary message in a single unmasked frame": 0x82 0x7F 0x0000000000010000.
        var header = new byte[WsFrame.MaxHeaderSize];
        var size = WsFrame.WriteHeader(header, WsOpcode.Binary, 65536);
        Assert.That(size, Is.EqualTo(10));
        Assert.That(header, Is.EqualTo(new byte[] { 0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 }));
    }

    [Test]
    public void WriteHeader_refuses_a_destination_too_small_for_it() =>
        Assert.Throws<ArgumentException>(() => WsFrame.WriteHeader(new byte[3], WsOpcode.Text, 126));

    [TestCase(0)]
    [TestCase(125)]
    [TestCase(126)]
    [TestCase(65535)]
    [TestCase(65536)]
    [TestCase(70000)]
    public void Text_is_header_then_payload_at_every_length_encoding(int length)
    {
        var payload = new byte[length];
        new Random(length).NextBytes(payload);

        var frame = WsFrame.Text(payload);

        var header = WsFrame.HeaderSize(length);
        Assert.That(frame, Has.Length.EqualTo(header + length));
        Assert.That(frame[0], Is.EqualTo(0x81), "FIN and Text, no RSV bits");
        Assert.That(frame[1] & 0x80, Is.Zero, "a server never masks");
        var declared = header switch
        {
            2 => frame[1],
            4 => (frame[2] << 8) | frame[3],
            _ => (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(frame.AsSpan(2)),
        };
        Assert.That(declared, Is.EqualTo(length));
        Assert.That(frame[header..], Is.EqualTo(payload));
    }

    [Test]
    public void WriteText_writes_the_same_bytes_into_a_larger_destination_and_returns_their_count()
    {
        var payload = Encoding.UTF8.GetBytes(new string('x', 300));
        var destination = new byte[1000];
        destination.AsSpan().Fill(0xEE);

        var written = WsFrame.WriteText(destination, payload);

        Assert.That(written, Is.EqualTo(304));
        Assert.That(destination[..written], Is.EqualTo(WsFrame.Text(payload)));
        Assert.That(destination[written], Is.EqualTo(0xEE), "nothing written past the frame");
    }

    [Test]
    public void WriteText_refuses_a_destination_too_small_for_the_frame() =>
        Assert.Throws<ArgumentException>(() => WsFrame.WriteText(new byte[6], "Hello"u8));

    [Test]
    public void Unmasked_ping_Hello_is_the_rfc_example()
    {
        // RFC 6455 §5.7: "Unmasked Ping request and masked Ping response" (the request).
        Assert.That(WsFrame.Control(WsOpcode.Ping, "Hello"u8), Is.EqualTo(new byte[] { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f }));
    }

    [Test]
    public void A_pong_echoes_its_payload_and_an_empty_one_is_two_bytes()
    {
        Assert.That(WsFrame.Control(WsOpcode.Pong, [1, 2, 3]), Is.EqualTo(new byte[] { 0x8A, 0x03, 1, 2, 3 }));
        Assert.That(WsFrame.Control(WsOpcode.Pong, []), Is.EqualTo(new byte[] { 0x8A, 0x00 }));
    }

    [Test]
    public void A_control_frame_takes_125_bytes_and_refuses_126()
    {
        Assert.That(WsFrame.Control(WsOpcode.Ping, new byte[125]), Has.Length.EqualTo(127));
        Assert.Throws<ArgumentOutOfRangeException>(() => WsFrame.Control(WsOpcode.Ping, new byte[126]));
    }

    [TestCase((int)WsOpcode.Text)]
    [TestCase((int)WsOpcode.Binary)]
    [TestCase((int)WsOpcode.Continuation)]
    public void Control_refuses_a_data_opcode(int opcode) =>
        Assert.Throws<ArgumentException>(() => WsFrame.Control((WsOpcode)opcode, []));

    [Test]
    public void Close_is_the_big_endian_code_and_the_utf8_reason()
    {
        Assert.That(WsFrame.Close(1000, "bye"), Is.EqualTo(new byte[] { 0x88, 0x05, 0x03, 0xE8, (byte)'b', (byte)'y', (byte)'e' }));
        Assert.That(WsFrame.Close(4001, null), Is.EqualTo(new byte[] { 0x88, 0x02, 0x0F, 0xA1 }));
        Assert.That(WsFrame.Close(1009, ""), Is.EqualTo(new byte[] { 0x88, 0x02, 0x03, 0xF1 }));
    }

    [TestCase(999)]
    [TestCase(1005)]
    [TestCase(1006)]
    [TestCase(1015)]
    [TestCase(5000)]
    public void Close_refuses_a_code_that_may_not_be_sent(int code) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => WsFrame.Close(code, null));

    // 'a' 1 byte, 'é' 2 bytes, '€' 3 bytes, '😀' 4 bytes (a surrogate pair).
    [TestCase("", 200, "a", 123)]
    [TestCase("", 61, "é", 122)]
    [TestCase("a", 61, "é", 123)]
    [TestCase("aa", 61, "é", 122)]
    [TestCase("", 41, "€", 123)]
    [TestCase("a", 41, "€", 121)]
    [TestCase("", 30, "😀", 120)]
    [TestCase("aaa", 30, "😀", 123)]
    [TestCase("aaaa", 30, "😀", 120)]
    public void A_long_reason_is_cut_to_123_bytes_at_a_character_boundary(string prefix, int repeat, string unit, int expectedBytes)
    {
        var reason = prefix + string.Concat(Enumerable.Repeat(unit, repeat));

        var frame = WsFrame.Close(1001, reason);

        var reasonBytes = frame.AsSpan(4);
        Assert.That(frame[1], Is.EqualTo(2 + expectedBytes), "the declared length");
        Assert.That(reasonBytes.Length, Is.EqualTo(expectedBytes));
        Assert.That(Utf8.IsValid(reasonBytes), Is.True);
        Assert.That(reason, Does.StartWith(Encoding.UTF8.GetString(reasonBytes)));
    }

    [Test]
    public void A_lone_surrogate_in_a_reason_is_sent_as_the_replacement_character()
    {
        var frame = WsFrame.Close(1000, "a\ud800b");
        Assert.That(Encoding.UTF8.GetString(frame.AsSpan(4)), Is.EqualTo("a\ufffdb"));
    }

    [Test]
    public void AcceptKey_is_the_rfc_example()
    {
        // RFC 6455 §1.3.
        Assert.That(WsFrame.AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), Is.EqualTo("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        Assert.That(WsFrame.AcceptKey(" dGhlIHNhbXBsZSBub25jZQ==\t"), Is.EqualTo("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "the header value is trimmed");
    }

    [Test]
    public void AcceptKey_of_another_key_differs() =>
        Assert.That(WsFrame.AcceptKey("AQIDBAUGBwgJCgsMDQ4PEA=="), Is.Not.EqualTo("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=").And.Length.EqualTo(28));

    [TestCase("dGhlIHNhbXBsZSBub25jZQ==", true)]
    [TestCase("  dGhlIHNhbXBsZSBub25jZQ== ", true)]
    [TestCase("AQIDBAUGBwgJCgsMDQ4PEA==", true)]
    [TestCase(null, false)]
    [TestCase("", false)]
    [TestCase("   ", false)]
    [TestCase("dGhlIHNhbXBsZSBub25jZQ", false)]        // padding missing
    [TestCase("AQIDBAUGBwgJCgsMDQ4P", false)]          // 15 bytes
    [TestCase("AQIDBAUGBwgJCgsMDQ4PEBE=", false)]      // 17 bytes
    [TestCase("dGhlIHNhbXBsZSBub25jZQ!=", false)]      // not base64
    [TestCase("dGhlIHNhbX BsZSBub25jZQ=", false)]      // inner space: fewer bytes
    public void IsValidClientKey_takes_base64_of_exactly_16_bytes(string? key, bool expected) =>
        Assert.That(WsFrame.IsValidClientKey(key), Is.EqualTo(expected));

    [TestCase(1000, true)]
    [TestCase(1001, true)]
    [TestCase(1002, true)]
    [TestCase(1003, true)]
    [TestCase(1004, false)]
    [TestCase(1005, false)]
    [TestCase(1006, false)]
    [TestCase(1007, true)]
    [TestCase(1011, true)]
    [TestCase(1014, true)]
    [TestCase(1015, false)]
    [TestCase(1016, false)]
    [TestCase(2999, false)]
    [TestCase(3000, true)]
    [TestCase(4999, true)]
    [TestCase(5000, false)]
    [TestCase(999, false)]
    [TestCase(0, false)]
    [TestCase(-1000, false)]
    [TestCase(65535, false)]
    public void IsValidCloseCode_is_what_a_peer_may_send(int code, bool expected) =>
        Assert.That(WsFrame.IsValidCloseCode(code), Is.EqualTo(expected));
}
