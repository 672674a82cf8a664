using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ChatServer.Tests;

/// <summary>
/// A WebSocket client written by hand over a <see cref="TcpClient"/>: the HTTP upgrade and RFC 6455 framing, so a test
/// can send what no real client library would (unmasked frames, reserved bits, unknown opcodes, several frames and a
/// violation in one write) and see every byte the server sends, in order, up to the end of the TCP stream.
/// </summary>
public sealed class RawWebSocket : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private NetworkStream _stream = null!;   // once connected
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RawWebSocket(TcpClient tcp)
    {
        _tcp = tcp;
    }

    /// <summary>
    /// Connects and upgrades. <paramref name="receiveBufferSize"/> pins the TCP receive buffer (a client that does
    /// not read then fills the server's side after kilobytes, as in <see cref="ChatClient.ConnectWithoutReadingAsync"/>).
    /// </summary>
    /// <remarks>
    /// <paramref name="plainRequestFirst"/>: a path to GET on the same TCP connection before the upgrade (its response
    /// must carry a Content-Length), so the upgrade is the connection's second request, as on a reused keep-alive one.
    /// </remarks>
    public static async Task<RawWebSocket> ConnectAsync(Uri uri, CancellationToken cancellationToken, int? receiveBufferSize = null,
        string? plainRequestFirst = null)
    {
        var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
        if (receiveBufferSize is { } size)
        {
            tcp.ReceiveBufferSize = size;
        }

        var socket = new RawWebSocket(tcp);
        try
        {
            await tcp.ConnectAsync(uri.Host, uri.Port, cancellationToken);
            socket._stream = tcp.GetStream();
            if (plainRequestFirst is not null)
            {
                await socket.SendRawAsync(Encoding.ASCII.GetBytes($"GET {plainRequestFirst} HTTP/1.1\r\nHost: {uri.Authority}\r\n\r\n"),
                    cancellationToken);
                var response = await socket.ReadHeadAsync(cancellationToken);
                var length = response.Split("\r\n").Select(line => line.Split(':', 2))
                    .Single(pair => pair[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))[1].Trim();
                if (!await socket.FillAsync(int.Parse(length, System.Globalization.CultureInfo.InvariantCulture), cancellationToken))
                {
                    throw new EndOfStreamException("The server ended the connection after the plain request.");
                }

                socket._start += int.Parse(length, System.Globalization.CultureInfo.InvariantCulture);
                socket.PlainResponse = response;
            }

            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            var request = $"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
            await socket.SendRawAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
            var head = socket.UpgradeResponse = await socket.ReadHeadAsync(cancellationToken);
#pragma warning disable CA5350 // RFC 6455 §4.2.2 defines Sec-WebSocket-Accept with SHA-1; nothing here is security
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
#pragma warning restore CA5350
            if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal) ||
                !head.Contains($"Sec-WebSocket-Accept: {accept}", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"Upgrade refused: {head}");
            }

            return socket;
        }
        catch
        {
            await socket.DisposeAsync();
            throw;
        }
    }

    /// <summary>The 101 response's head (status line and headers).</summary>
    public string UpgradeResponse { get; private set; } = "";

    /// <summary>The head of the response to <c>plainRequestFirst</c>, when one was sent.</summary>
    public string? PlainResponse { get; private set; }

    /// <summary>One frame's bytes: masked (as a client must) unless told otherwise; <paramref name="rsv"/> sets RSV1-3 (0-7).</summary>
    public static byte[] Frame(int opcode, ReadOnlySpan<byte> payload, bool masked = true, int rsv = 0, bool fin = true)
    {
        var lengthBytes = payload.Length <= 125 ? 0 : payload.Length <= ushort.MaxValue ? 2 : 8;
        var frame = new byte[2 + lengthBytes + (masked ? 4 : 0) + payload.Length];
        frame[0] = (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
        frame[1] = (byte)((masked ? 0x80 : 0) | (lengthBytes == 0 ? payload.Length : lengthBytes == 2 ? 126 : 127));
        var at = 2;
        if (lengthBytes == 2)
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(at), (ushort)payload.Length);
        }
        else if (lengthBytes == 8)
        {
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(at), (ulong)payload.Length);
        }

        at += lengthBytes;
        if (!masked)
        {
            payload.CopyTo(frame.AsSpan(at));
            return frame;
        }

        var mask = RandomNumberGenerator.GetBytes(4);
        mask.CopyTo(frame, at);
        at += 4;
        for (var i = 0; i < payload.Length; i++)
        {
            frame[at + i] = (byte)(payload[i] ^ mask[i % 4]);
        }

        return frame;
    }

    /// <summary>A masked text frame holding <paramref name="json"/> serialized.</summary>
    public static byte[] Text(object json) => Frame(0x1, JsonSerializer.SerializeToUtf8Bytes(json));

    /// <summary>A masked Close frame with <paramref name="status"/>.</summary>
    public static byte[] Close(ushort status)
    {
        Span<byte> payload = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, status);
        return Frame(0x8, payload);
    }

    /// <summary>Writes bytes as they are: any number of frames (or broken ones) in one TCP write.</summary>
    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) =>
        await _stream.WriteAsync(bytes, cancellationToken);

    /// <summary>Reads frames until a text frame matches, e.g. the ack of a sign-in.</summary>
    public async Task<ServerFrame> ExpectAsync(Func<Frame, bool> match, CancellationToken cancellationToken)
    {
        while (true)
        {
            var frame = await ReadFrameAsync(cancellationToken)
                ?? throw new EndOfStreamException("The server ended the connection while a frame was awaited.");
            if (frame.Opcode == 0x8)
            {
                throw new InvalidOperationException($"The server closed ({frame.CloseStatus}) while a frame was awaited.");
            }

            if (frame.Opcode == 0x1 && match(new Frame(frame.Text)))
            {
                return frame;
            }
        }
    }

    /// <summary>
    /// Reads everything the server sends until the TCP stream ends (FIN or reset), answering its Close with a Close
    /// (RFC 6455 §5.5.1) and reading on past it, so whatever follows a Close is seen too.
    /// </summary>
    public async Task<Transcript> ReadToEndAsync(CancellationToken cancellationToken)
    {
        var frames = new List<ServerFrame>();
        var reset = false;
        var answered = false;
        try
        {
            while (await ReadFrameAsync(cancellationToken) is { } frame)
            {
                frames.Add(frame);
                if (frame.Opcode == 0x8 && !answered)
                {
                    answered = true;
                    try
                    {
                        await SendRawAsync(Close(frame.CloseStatus ?? 1000), cancellationToken);
                    }
                    catch (IOException)
                    {
                        // The server may already have ended the TCP connection; what it sent is still read below.
                    }
                }
            }
        }
        catch (IOException)
        {
            reset = true;   // a reset: Linux still hands over every byte that arrived before it
        }

        return new Transcript(frames, reset, _end - _start);
    }

    /// <summary>The next whole frame, or null at the end of the stream.</summary>
    public async Task<ServerFrame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        if (!await FillAsync(2, cancellationToken))
        {
            return null;
        }

        var first = _buffer[_start];
        var second = _buffer[_start + 1];
        var headerLength = 2 + ((second & 0x7F) switch { 126 => 2, 127 => 8, _ => 0 }) + ((second & 0x80) != 0 ? 4 : 0);
        if (!await FillAsync(headerLength, cancellationToken))
        {
            return null;
        }

        long length = (second & 0x7F) switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 2)),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2)),
            var small => small,
        };
        if (length > _buffer.Length - headerLength)
        {
            throw new InvalidDataException($"A server frame of {length} bytes: more than this client reads.");
        }

        if (!await FillAsync(headerLength + (int)length, cancellationToken))
        {
            return null;
        }

        var payload = _buffer.AsSpan(_start + headerLength, (int)length).ToArray();
        _start += headerLength + (int)length;
        return new ServerFrame(first & 0x0F, (first & 0x80) != 0, (first & 0x70) >> 4, (second & 0x80) != 0, payload);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
        }

        _tcp.Dispose();
    }

    /// <summary>The HTTP response head; bytes after it stay buffered for the frame reader.</summary>
    private async Task<string> ReadHeadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var end = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                var head = Encoding.ASCII.GetString(_buffer, _start, end);
                _start += end + 4;
                return head;
            }

            if (!await FillAsync(_end - _start + 1, cancellationToken))
            {
                throw new EndOfStreamException("The server ended the connection during the upgrade.");
            }
        }
    }

    /// <summary>Makes at least <paramref name="count"/> bytes available; false at the end of the stream.</summary>
    private async Task<bool> FillAsync(int count, CancellationToken cancellationToken)
    {
        if (_end - _start >= count)
        {
            return true;
        }

        Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
        _end -= _start;
        _start = 0;
        while (_end < count)
        {
            var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                return false;
            }

            _end += read;
        }

        return true;
    }
}

/// <summary>One frame as the server put it on the wire.</summary>
public sealed record ServerFrame(int Opcode, bool Fin, int Rsv, bool Masked, byte[] Payload)
{
    public ushort? CloseStatus => Opcode == 0x8 && Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : null;

    public string Text => Encoding.UTF8.GetString(Payload);

    public override string ToString() => Opcode switch
    {
        0x1 => Text,
        0x8 => $"Close {CloseStatus}",
        var other => $"opcode {other:X} ({Payload.Length} bytes)",
    };
}

/// <summary>
/// Everything one connection received: its frames in order, whether the stream ended with a reset rather than a FIN,
/// and how many bytes were left over that did not make a whole frame.
/// </summary>
public sealed record Transcript(IReadOnlyList<ServerFrame> Frames, bool Reset, int TrailingBytes)
{
    /// <summary>The first Close frame, if any.</summary>
    public ServerFrame? Close => Frames.FirstOrDefault(f => f.Opcode == 0x8);

    /// <summary>Frames (of any kind) after the first Close, plus a partial one if bytes were left over.</summary>
    public IReadOnlyList<string> AfterClose =>
        Close is null ? [] : [.. Frames.SkipWhile(f => f.Opcode != 0x8).Skip(1).Select(f => f.ToString()),
            .. TrailingBytes > 0 ? [$"{TrailingBytes} bytes of a partial frame"] : Array.Empty<string>()];

    /// <summary>What is wrong with this connection's end, or null: a Close with <paramref name="status"/>, then nothing.</summary>
    public string? Problem(ushort status) =>
        Close is not { } close ? $"no Close frame ({Frames.Count} frames, then {(Reset ? "a reset" : "FIN")})"
        : close.CloseStatus != status ? $"Close {close.CloseStatus}, not {status}"
        : AfterClose.Count > 0 ? $"{AfterClose.Count} frame(s) after the Close: {string.Join(" | ", AfterClose.Take(3))}"
        : null;
}
