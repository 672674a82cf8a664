using System.Buffers;
using System.Buffers.Binary;

namespace ChatServer.Connections;

/// <summary>
/// The byte stream under one server WebSocket, which lets nothing through after a Close frame (RFC 6455 §5.5.1).
/// The runtime's <c>ManagedWebSocket</c> has more than one writer: the connection's send loop, and the runtime itself, which
/// sends Close 1002/1007 from inside <c>ReceiveAsync</c> when the peer breaks the protocol, and pongs. Its
/// <c>SendAsync</c> checks the socket's state before it takes its send lock, so a data frame that passed the check can
/// be written after the runtime's Close. No caller can close that window, so the guarantee lives here, where every
/// frame becomes bytes: writes are parsed into frames, a Close frame is passed whole, and every later write is dropped
/// (silently: a pong the runtime answers during the close handshake must not fail the receive that is waiting for the
/// peer's Close). Reads pass through untouched.
/// </summary>
internal sealed class CloseLastStream(Stream inner) : Stream
{
    private readonly byte[] _header = new byte[14];   // a frame header: 2 bytes, up to 8 of length, 4 of mask
    private int _headerLength;
    private long _payloadLeft;
    private bool _inClose;
    private byte[] _closePayload = [];
    private volatile bool _sealed;
    private byte[]? _held;             // frames held back while the send loop has more queued: written with the next write
    private int _heldLength;

    /// <summary>The most bytes held back before they are written anyway.</summary>
    internal const int MaxHeldBytes = 64 * 1024;

    /// <summary>True once a whole Close frame has been written: from then on nothing reaches the peer.</summary>
    public bool CloseSent => _sealed;

    /// <summary>The status of the Close that was written, whoever wrote it (1002 when the runtime failed the peer).</summary>
    public int? SentCloseStatus => _sealed && _closePayload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(_closePayload) : null;

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    /// <summary>
    /// Set by the send loop while it writes a frame that more queued frames will follow: the frame's bytes are held
    /// back (copied into a pooled buffer) and go out with the next write, so a burst of frames for one connection is one
    /// write and one flush of the transport instead of one each. A Close is never held, nor anything beyond
    /// <see cref="MaxHeldBytes"/>; the send loop always writes again after a held frame (the next frame or the Close).
    /// </summary>
    public bool HoldWrites { get; set; }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var admitted = Admit(buffer.Span);
        if (_held is null && (!HoldWrites || _sealed))
        {
            return admitted == 0 ? ValueTask.CompletedTask : inner.WriteAsync(buffer[..admitted], cancellationToken);
        }

        // Writes are never concurrent (the runtime's send lock), so the held buffer needs no lock of its own.
        Hold(buffer.Span[..admitted]);
        if (HoldWrites && !_sealed && _heldLength < MaxHeldBytes)
        {
            return ValueTask.CompletedTask;
        }

        return WriteHeldAsync(cancellationToken);
    }

    private void Hold(ReadOnlySpan<byte> bytes)
    {
        if (_held is null || _held.Length - _heldLength < bytes.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(4096, _heldLength + bytes.Length));
            if (_held is not null)
            {
                _held.AsSpan(0, _heldLength).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_held);
            }

            _held = larger;
        }

        bytes.CopyTo(_held.AsSpan(_heldLength));
        _heldLength += bytes.Length;
    }

    private async ValueTask WriteHeldAsync(CancellationToken cancellationToken)
    {
        var held = _held!;
        var length = _heldLength;
        _held = null;
        _heldLength = 0;
        try
        {
            await inner.WriteAsync(held.AsMemory(0, length), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(held);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        var admitted = Admit(buffer.AsSpan(offset, count));
        if (admitted > 0)
        {
            inner.Write(buffer, offset, admitted);
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// How many bytes of <paramref name="bytes"/> may go out: all of them, up to the end of the first Close frame, or
    /// none once it has gone. Frames may span writes (the runtime writes one frame per write; this does not rely on it).
    /// Writes are never concurrent: the runtime holds its send lock across each.
    /// </summary>
    private int Admit(ReadOnlySpan<byte> bytes)
    {
        var at = 0;
        while (at < bytes.Length && !_sealed)
        {
            if (_payloadLeft > 0)
            {
                var take = (int)Math.Min(_payloadLeft, bytes.Length - at);
                if (_inClose)
                {
                    _closePayload = [.. _closePayload, .. bytes.Slice(at, take)];
                }

                at += take;
                _payloadLeft -= take;
                _sealed = _inClose && _payloadLeft == 0;
                continue;
            }

            _header[_headerLength++] = bytes[at++];
            if (_headerLength < 2 || _headerLength < HeaderLength())
            {
                continue;
            }

            _payloadLeft = (_header[1] & 0x7F) switch
            {
                126 => BinaryPrimitives.ReadUInt16BigEndian(_header.AsSpan(2)),
                127 => (long)BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2)),
                var length => length,
            };
            _inClose = (_header[0] & 0x0F) == 0x8;
            _headerLength = 0;
            _sealed = _inClose && _payloadLeft == 0;
        }

        return at;
    }

    private int HeaderLength() => 2 + ((_header[1] & 0x7F) switch { 126 => 2, 127 => 8, _ => 0 }) + ((_header[1] & 0x80) != 0 ? 4 : 0);
}
