using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;

namespace ChatServer.WebSockets;

/// <summary>What one <see cref="WsFrameReader.TryRead"/> found.</summary>
internal enum WsReadResult
{
    /// <summary>Nothing more complete in the buffer; call again with more data (after advancing by what was consumed).</summary>
    NeedMoreData,

    /// <summary>A complete Text or Binary message: <see cref="WsFrameReader.MessageType"/>, <see cref="WsFrameReader.Payload"/>.</summary>
    Message,

    /// <summary><see cref="WsFrameReader.Payload"/> is the ping's payload, to be answered with a Pong carrying it (§5.5.2).</summary>
    Ping,

    /// <summary><see cref="WsFrameReader.Payload"/> is the pong's payload.</summary>
    Pong,

    /// <summary>The peer's Close: <see cref="WsFrameReader.CloseCode"/> (null for an empty Close) and <see cref="WsFrameReader.CloseReason"/>.</summary>
    Close,

    /// <summary>
    /// A protocol violation: <see cref="WsFrameReader.ErrorCode"/> (1002, 1007 or 1009) and <see cref="WsFrameReader.ErrorReason"/>.
    /// The connection must be failed (§7.1.7); the reader answers Error to every later call.
    /// </summary>
    Error,
}

/// <summary>
/// Incremental decoder of client frames (RFC 6455 §5), one per connection; not thread-safe.
/// It holds no buffer while the connection is idle, because idle connections are most of them and must stay small: a
/// buffer is rented from <see cref="ArrayPool{T}.Shared"/> only while a fragmented message is being assembled or a
/// payload is handed out, and goes back on the next <see cref="TryRead"/> (or <see cref="Dispose"/>). A frame is
/// consumed only once all of it is in the caller's buffer (chat frames are small, and the pipe holds them anyway), so
/// the reader never keeps half a header or half a payload of its own; only whole fragments of an unfinished message.
/// </summary>
internal sealed class WsFrameReader : IDisposable
{
    /// <summary>The longest client header: 2 bytes, 8 of length, 4 of mask key.</summary>
    private const int MaxClientHeaderSize = 14;

    private readonly int _maxMessageBytes;
    private byte[]? _message;          // the message being assembled (fragments so far) or handed out
    private int _messageLength;
    private bool _fragmented;          // a message's first fragment came without FIN; continuations are expected
    private WsOpcode _fragmentedType;
    private bool _messageHandedOut;    // _message is the Payload of the last Message: released by the next TryRead
    private byte[]? _control;          // a Ping or Pong payload handed out (kept apart: it may arrive between fragments)
    private bool _failed;
    private bool _disposed;

    /// <param name="maxMessageBytes">The largest whole message (the sum of its fragments) accepted; larger is Error 1009.</param>
    public WsFrameReader(int maxMessageBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessageBytes);
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>Text or Binary, for <see cref="WsReadResult.Message"/> (a fragmented message has its first frame's type).</summary>
    public WsOpcode MessageType { get; private set; }

    /// <summary>The unmasked payload of the last Message, Ping or Pong; valid until the next <see cref="TryRead"/> or <see cref="Dispose"/>.</summary>
    public ReadOnlyMemory<byte> Payload { get; private set; }

    /// <summary>The peer's close code, or null when its Close frame had no payload (which §7.1.5 reads as 1005).</summary>
    public int? CloseCode { get; private set; }

    /// <summary>The peer's close reason; empty when it gave none.</summary>
    public string CloseReason { get; private set; } = "";

    /// <summary>The close code to fail the connection with: 1002 (protocol error), 1007 (invalid UTF-8) or 1009 (too big).</summary>
    public int ErrorCode { get; private set; }

    /// <summary>Which rule the peer broke, in short English, for the log and the Close reason.</summary>
    public string ErrorReason { get; private set; } = "";

    /// <summary>True while the reader holds a rented buffer (a message being assembled, or a payload handed out); for tests.</summary>
    internal bool HoldsBuffer => _message is not null || _control is not null;

    /// <summary>
    /// True when the reader holds no state at all: no buffer and no fragmented message in progress (a message's first
    /// fragment may be empty, so no buffer does not mean no message). Only then may it be dropped and a new one made.
    /// </summary>
    public bool IsIdle => !_fragmented && !HoldsBuffer;

    /// <summary>
    /// Decodes at most one event from the start of <paramref name="buffer"/>. <paramref name="consumed"/> is how many
    /// bytes were used, to advance the pipe by, whatever the result: fragments of an unfinished message are taken in
    /// (copied out and unmasked) even when the call ends with <see cref="WsReadResult.NeedMoreData"/>, so consumed can
    /// be more than zero then. A frame is consumed only when its header and whole payload are in
    /// <paramref name="buffer"/>; a header alone is enough to fail it (a reserved bit, or a length over the limit).
    /// </summary>
    public WsReadResult TryRead(in ReadOnlySequence<byte> buffer, out long consumed)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        consumed = 0;
        if (_failed)
        {
            return WsReadResult.Error;
        }

        ReleaseHandedOut();
        var remaining = buffer;
        Span<byte> copy = stackalloc byte[MaxClientHeaderSize];
        while (true)
        {
            if (remaining.IsEmpty)
            {
                return WsReadResult.NeedMoreData;
            }

            // The header, contiguous: straight from the first segment when it holds it (nearly always), else copied.
            var first = remaining.FirstSpan;
            scoped ReadOnlySpan<byte> header;
            if (first.Length >= MaxClientHeaderSize || first.Length == remaining.Length)
            {
                header = first;
            }
            else
            {
                var available = (int)Math.Min(MaxClientHeaderSize, remaining.Length);
                remaining.Slice(0, available).CopyTo(copy);
                header = copy[..available];
            }

            var b0 = header[0];
            var fin = (b0 & 0x80) != 0;
            var opcode = (WsOpcode)(b0 & 0x0F);
            var isControl = (b0 & 0x08) != 0;
            if ((b0 & 0x70) != 0)
            {
                return Fail(1002, "RSV1, RSV2 and RSV3 must be 0: no extension was negotiated");
            }

            if (opcode is not (WsOpcode.Continuation or WsOpcode.Text or WsOpcode.Binary or WsOpcode.Close or WsOpcode.Ping or WsOpcode.Pong))
            {
                return Fail(1002, $"Opcode {(int)opcode:X} is reserved");
            }

            if (isControl && !fin)
            {
                return Fail(1002, "Control frames must not be fragmented (FIN must be 1)");
            }

            if (opcode == WsOpcode.Continuation && !_fragmented)
            {
                return Fail(1002, "Continuation frame with no fragmented message in progress");
            }

            if (_fragmented && opcode is WsOpcode.Text or WsOpcode.Binary)
            {
                return Fail(1002, "New data frame while a fragmented message is in progress");
            }

            if (header.Length < 2)
            {
                return WsReadResult.NeedMoreData;
            }

            var b1 = header[1];
            if ((b1 & 0x80) == 0)
            {
                return Fail(1002, "Client frames must be masked");
            }

            var length7 = b1 & 0x7F;
            if (isControl && length7 > WsFrame.MaxControlPayload)
            {
                return Fail(1002, "Control frame payload must be 125 bytes or less");
            }

            var lengthBytes = length7 switch { 126 => 2, 127 => 8, _ => 0 };
            if (header.Length < 2 + lengthBytes)
            {
                return WsReadResult.NeedMoreData;
            }

            ulong length = length7 switch
            {
                126 => BinaryPrimitives.ReadUInt16BigEndian(header[2..]),
                127 => BinaryPrimitives.ReadUInt64BigEndian(header[2..]),
                _ => (ulong)length7,
            };
            if (length > long.MaxValue)
            {
                return Fail(1002, "64-bit payload length must have its most significant bit 0");
            }

            // Decided on the header alone: a peer must not make the server wait for (or buffer) what it will refuse.
            var sofar = _fragmented ? _messageLength : 0;
            if (!isControl && length > (ulong)(_maxMessageBytes - sofar))
            {
                return Fail(1009, $"Message is larger than {_maxMessageBytes} bytes");
            }

            var headerSize = 2 + lengthBytes + 4;
            var payloadLength = (int)length;   // at most _maxMessageBytes or 125 here
            if (remaining.Length < (long)headerSize + payloadLength)
            {
                return WsReadResult.NeedMoreData;
            }

            // The whole frame is in the buffer, so the header (at most 14 bytes) is whole in the span or its copy.
            Debug.Assert(header.Length >= headerSize);

            var maskKey = MemoryMarshal.Read<uint>(header.Slice(2 + lengthBytes, 4));
            var payload = remaining.Slice(headerSize, payloadLength);
            var frameSize = (long)headerSize + payloadLength;

            if (isControl)
            {
                consumed += frameSize;
                return ReadControl(opcode, payload, maskKey);
            }

            // A data frame: its payload joins the message (a whole message is a message of one fragment).
            if (!_fragmented)
            {
                _fragmentedType = opcode;
                _messageLength = 0;
            }

            EnsureCapacity(_messageLength + payloadLength);
            if (payloadLength > 0)
            {
                Unmask(payload, maskKey, _message.AsSpan(_messageLength, payloadLength));
                _messageLength += payloadLength;
            }

            consumed += frameSize;
            remaining = remaining.Slice(frameSize);
            if (!fin)
            {
                // Not an event: read on, a later fragment (or a control frame between them) may be in the buffer too.
                _fragmented = true;
                continue;
            }

            _fragmented = false;
            var message = _message is null ? default : _message.AsMemory(0, _messageLength);
            if (_fragmentedType == WsOpcode.Text && !Utf8.IsValid(message.Span))
            {
                return Fail(1007, "Text message is not valid UTF-8");
            }

            _messageHandedOut = true;
            MessageType = _fragmentedType;
            Payload = message;
            return WsReadResult.Message;
        }
    }

    private WsReadResult ReadControl(WsOpcode opcode, ReadOnlySequence<byte> masked, uint maskKey)
    {
        var length = (int)masked.Length;
        if (opcode == WsOpcode.Close)
        {
            // Decoded on the stack: only the code and the reason's string outlive the call.
            Span<byte> close = stackalloc byte[WsFrame.MaxControlPayload];
            close = close[..length];
            Unmask(masked, maskKey, close);
            if (length == 0)
            {
                CloseCode = null;
                CloseReason = "";
                return WsReadResult.Close;
            }

            if (length == 1)
            {
                return Fail(1002, "Close payload of 1 byte: a code is 2");
            }

            var code = BinaryPrimitives.ReadUInt16BigEndian(close);
            if (!WsFrame.IsValidCloseCode(code))
            {
                return Fail(1002, $"Close code {code} may not be sent");
            }

            var reason = close[2..];
            if (!Utf8.IsValid(reason))
            {
                return Fail(1007, "Close reason is not valid UTF-8");
            }

            CloseCode = code;
            CloseReason = reason.IsEmpty ? "" : Encoding.UTF8.GetString(reason);
            return WsReadResult.Close;
        }

        if (length > 0)
        {
            _control = ArrayPool<byte>.Shared.Rent(length);
            Unmask(masked, maskKey, _control.AsSpan(0, length));
            Payload = _control.AsMemory(0, length);
        }

        return opcode == WsOpcode.Ping ? WsReadResult.Ping : WsReadResult.Pong;
    }

    /// <summary>Grows the message buffer to hold <paramref name="needed"/> bytes, keeping the fragments already in it.</summary>
    private void EnsureCapacity(int needed)
    {
        if (needed == 0 || (_message is not null && _message.Length >= needed))
        {
            return;
        }

        // Doubling keeps a message of many small fragments from copying itself at every one; never past the limit.
        var size = _message is null ? needed : Math.Max(needed, (int)Math.Min(2L * _message.Length, _maxMessageBytes));
        var larger = ArrayPool<byte>.Shared.Rent(size);
        if (_message is not null)
        {
            _message.AsSpan(0, _messageLength).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_message);
        }

        _message = larger;
    }

    /// <summary>
    /// Copies <paramref name="masked"/> into <paramref name="destination"/> XOR the mask key (§5.3), the key's position
    /// carrying on from one segment to the next.
    /// </summary>
    private static void Unmask(in ReadOnlySequence<byte> masked, uint maskKey, Span<byte> destination)
    {
        var at = 0;
        foreach (var segment in masked)
        {
            var span = segment.Span;
            if (span.IsEmpty)
            {
                continue;
            }

            UnmaskSpan(span, RotateKey(maskKey, at & 3), destination.Slice(at, span.Length));
            at += span.Length;
        }
    }

    /// <summary>The key as it lines up with byte <paramref name="offset"/> of the payload (0-3), in memory order.</summary>
    private static uint RotateKey(uint maskKey, int offset)
    {
        if (offset == 0)
        {
            return maskKey;
        }

        // The key's bytes are read as they lie in memory; rotating the bytes, not the number, keeps this endian-neutral.
        Span<byte> key = stackalloc byte[8];
        MemoryMarshal.Write(key, maskKey);
        MemoryMarshal.Write(key[4..], maskKey);
        return MemoryMarshal.Read<uint>(key[offset..]);
    }

    /// <summary>
    /// XOR of <paramref name="source"/> with a key whose first byte lines up with its first byte: a vector at a time, then
    /// 8 bytes, then byte by byte. Every width is a multiple of 4, so the key's pattern repeats unchanged in each.
    /// </summary>
    internal static void UnmaskSpan(ReadOnlySpan<byte> source, uint maskKey, Span<byte> destination)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && source.Length >= Vector<byte>.Count)
        {
            var key = Vector.AsVectorByte(new Vector<uint>(maskKey));
            for (; i <= source.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                (new Vector<byte>(source[i..]) ^ key).CopyTo(destination[i..]);
            }
        }

        var key64 = ((ulong)maskKey << 32) | maskKey;   // the same 4 bytes twice, whatever the byte order
        for (; i <= source.Length - 8; i += 8)
        {
            MemoryMarshal.Write(destination[i..], MemoryMarshal.Read<ulong>(source[i..]) ^ key64);
        }

        Span<byte> keyBytes = stackalloc byte[4];
        MemoryMarshal.Write(keyBytes, maskKey);
        for (; i < source.Length; i++)
        {
            destination[i] = (byte)(source[i] ^ keyBytes[i & 3]);
        }
    }

    private WsReadResult Fail(int code, string reason)
    {
        _failed = true;
        ErrorCode = code;
        ErrorReason = reason;
        ReleaseAll();
        return WsReadResult.Error;
    }

    /// <summary>Returns what the last event handed out; a message still being assembled stays.</summary>
    private void ReleaseHandedOut()
    {
        Payload = default;
        if (_control is not null)
        {
            ArrayPool<byte>.Shared.Return(_control);
            _control = null;
        }

        if (_messageHandedOut)
        {
            _messageHandedOut = false;
            _messageLength = 0;
            if (_message is not null)
            {
                ArrayPool<byte>.Shared.Return(_message);
                _message = null;
            }
        }
    }

    private void ReleaseAll()
    {
        ReleaseHandedOut();
        if (_message is not null)
        {
            ArrayPool<byte>.Shared.Return(_message);
            _message = null;
        }

        _messageLength = 0;
        _fragmented = false;
    }

    /// <summary>Returns any rented buffer; the reader cannot be used afterwards.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        ReleaseAll();
        _disposed = true;
    }
}
