using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ChatServer.WebSockets;

/// <summary>The frame opcodes of RFC 6455 §5.2; the other values (3-7, 0xB-0xF) are reserved and fail the connection.</summary>
internal enum WsOpcode : byte
{
    Continuation = 0,
    Text = 1,
    Binary = 2,
    Close = 8,
    Ping = 9,
    Pong = 10,
}

/// <summary>
/// Server-to-client frames (RFC 6455 §5.2): never masked (§5.1: a server MUST NOT mask) and always FIN, because the
/// server never fragments: every message it sends is already whole in memory, so a fragment would only add headers.
/// Also the two pieces of the opening handshake that are pure functions of the key (§4.2.1, §4.2.2).
/// </summary>
internal static class WsFrame
{
    /// <summary>The largest header a server frame has: 2 bytes, and 8 of length for a payload over 65535 bytes (no mask key).</summary>
    public const int MaxHeaderSize = 10;

    /// <summary>The most a control frame carries (§5.5): its length must fit the 7-bit field.</summary>
    public const int MaxControlPayload = 125;

    /// <summary>The most UTF-8 a Close reason can have: the control-frame limit less the 2-byte status code.</summary>
    public const int MaxCloseReasonBytes = MaxControlPayload - 2;

    /// <summary>The GUID of §1.3 that the client's key is hashed with, to prove the server speaks WebSocket.</summary>
    private const string HandshakeGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>
    /// The header's size for <paramref name="payloadLength"/>: 2 up to 125 bytes, 4 with the 16-bit length up to 65535,
    /// 10 with the 64-bit length beyond (§5.2 asks for the shortest encoding).
    /// </summary>
    public static int HeaderSize(int payloadLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        return payloadLength <= 125 ? 2 : payloadLength <= ushort.MaxValue ? 4 : 10;
    }

    /// <summary>Writes an unmasked FIN header for <paramref name="opcode"/> and returns its size (<see cref="HeaderSize"/>).</summary>
    public static int WriteHeader(Span<byte> destination, WsOpcode opcode, int payloadLength)
    {
        var size = HeaderSize(payloadLength);
        if (destination.Length < size)
        {
            throw new ArgumentException($"The header needs {size} bytes; the destination has {destination.Length}.", nameof(destination));
        }

        destination[0] = (byte)(0x80 | (byte)opcode);
        switch (size)
        {
            case 2:
                destination[1] = (byte)payloadLength;
                break;
            case 4:
                destination[1] = 126;
                BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
                break;
            default:
                destination[1] = 127;
                BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
                break;
        }

        return size;
    }

    /// <summary>A whole Text frame in one new array, for a message written once and sent to many connections.</summary>
    public static byte[] Text(ReadOnlySpan<byte> payload)
    {
        var frame = new byte[HeaderSize(payload.Length) + payload.Length];
        WriteText(frame, payload);
        return frame;
    }

    /// <summary>A whole Text frame written into <paramref name="destination"/> (a pooled or pipe buffer); returns its length.</summary>
    public static int WriteText(Span<byte> destination, ReadOnlySpan<byte> payload)
    {
        var header = HeaderSize(payload.Length);
        if (destination.Length < header + payload.Length)
        {
            throw new ArgumentException($"The frame needs {header + payload.Length} bytes; the destination has {destination.Length}.", nameof(destination));
        }

        WriteHeader(destination, WsOpcode.Text, payload.Length);
        payload.CopyTo(destination[header..]);
        return header + payload.Length;
    }

    /// <summary>
    /// A Ping, Pong or Close frame. Throws for a data opcode, or for a payload over 125 bytes, which §5.5 forbids (a
    /// Pong echoing a ping can never be too long: the reader refuses such pings).
    /// </summary>
    public static byte[] Control(WsOpcode opcode, ReadOnlySpan<byte> payload)
    {
        if (opcode is not (WsOpcode.Close or WsOpcode.Ping or WsOpcode.Pong))
        {
            throw new ArgumentException($"{opcode} is not a control opcode.", nameof(opcode));
        }

        ArgumentOutOfRangeException.ThrowIfGreaterThan(payload.Length, MaxControlPayload, nameof(payload));
        var frame = new byte[2 + payload.Length];
        WriteHeader(frame, opcode, payload.Length);
        payload.CopyTo(frame.AsSpan(2));
        return frame;
    }

    /// <summary>
    /// A Close frame with <paramref name="code"/> (big-endian) and <paramref name="reason"/> in UTF-8 (§5.5.1). A reason
    /// too long for the control-frame limit is cut at the last whole character that fits, never inside one: the peer
    /// fails the connection (1007) on a reason that is not valid UTF-8, and then the Close's own code is lost.
    /// Lone surrogates are sent as U+FFFD, as <see cref="Encoding.UTF8"/> writes them.
    /// </summary>
    public static byte[] Close(int code, string? reason)
    {
        if (!IsValidCloseCode(code))
        {
            throw new ArgumentOutOfRangeException(nameof(code), code, "Not a close code that may be sent (RFC 6455 §7.4).");
        }

        var chars = FittingChars(reason ?? "", MaxCloseReasonBytes);
        var reasonBytes = Encoding.UTF8.GetByteCount(chars);
        var frame = new byte[2 + 2 + reasonBytes];
        WriteHeader(frame, WsOpcode.Close, 2 + reasonBytes);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)code);
        Encoding.UTF8.GetBytes(chars, frame.AsSpan(4));
        return frame;
    }

    /// <summary>The longest start of <paramref name="text"/> whose UTF-8 fits <paramref name="maxBytes"/>, ending at a rune boundary.</summary>
    private static ReadOnlySpan<char> FittingChars(string text, int maxBytes)
    {
        // A char is at most 3 UTF-8 bytes (a surrogate pair is 4 for 2), so a short string needs no counting.
        if (text.Length * 3 <= maxBytes || Encoding.UTF8.GetByteCount(text) <= maxBytes)
        {
            return text;
        }

        int bytes = 0, chars = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            // A lone surrogate comes out as U+FFFD: 3 bytes for its 1 char, as the encoder writes it.
            if (bytes + rune.Utf8SequenceLength > maxBytes)
            {
                break;
            }

            bytes += rune.Utf8SequenceLength;
            chars += rune.Utf16SequenceLength;
        }

        return text.AsSpan(0, chars);
    }

    /// <summary>
    /// The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (§4.2.2 step 5.4): base64 of the SHA-1 of the key
    /// (trimmed, as the header's value is) followed by the protocol's GUID. SHA-1 is what the RFC fixes; it proves only
    /// that the server read the handshake, it secures nothing.
    /// </summary>
    public static string AcceptKey(string secWebSocketKey)
    {
        ArgumentNullException.ThrowIfNull(secWebSocketKey);
        var key = secWebSocketKey.AsSpan().Trim();
        var length = Encoding.UTF8.GetByteCount(key) + HandshakeGuid.Length;
        var input = length <= 256 ? stackalloc byte[length] : new byte[length];
        var written = Encoding.UTF8.GetBytes(key, input);
        Encoding.ASCII.GetBytes(HandshakeGuid, input[written..]);
        Span<byte> hash = stackalloc byte[SHA1.HashSizeInBytes];
#pragma warning disable CA5350 // The handshake's hash is fixed by RFC 6455; it is not used for security.
        SHA1.HashData(input, hash);
#pragma warning restore CA5350
        return Convert.ToBase64String(hash);
    }

    /// <summary>
    /// True when the key, trimmed, is base64 of exactly 16 bytes (§4.2.1 item 5: "a randomly selected 16-byte value that
    /// has been base64-encoded"), which is always 24 characters; a server MUST refuse the handshake otherwise.
    /// </summary>
    public static bool IsValidClientKey(string? secWebSocketKey)
    {
        if (secWebSocketKey is null)
        {
            return false;
        }

        var key = secWebSocketKey.AsSpan().Trim();
        Span<byte> decoded = stackalloc byte[18];
        return key.Length == 24 && Convert.TryFromBase64Chars(key, decoded, out var written) && written == 16;
    }

    /// <summary>
    /// True for a code a peer may send in a Close frame (§7.4.1, and the IANA registry's 1012-1014): 1000-1003, 1007-1014
    /// for the protocol, 3000-4999 for libraries and applications. 1004-1006 and 1015 are reserved for reporting only
    /// (1005 "no status", 1006 "abnormal closure"), below 1000 and 1016-2999 are unassigned or reserved.
    /// </summary>
    public static bool IsValidCloseCode(int code) =>
        code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);
}
