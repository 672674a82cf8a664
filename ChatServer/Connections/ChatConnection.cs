using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using ChatServer.Hosting;
using ChatServer.Rooms;

namespace ChatServer.Connections;

/// <summary>
/// One client's WebSocket (ASP.NET Core's, accepted by the <c>/ws</c> endpoint) as the session and the rooms see it:
/// frames go in through <see cref="IFrameSink"/> (never blocking). Exactly one receive loop and one send loop (a
/// WebSocket allows one of each at a time): anything that wants to write calls <see cref="TryEnqueue"/>; only the send
/// loop calls <c>SendAsync</c>. Closing never cancels a pending operation (that aborts the socket).
/// <para>
/// The Close frame is the last frame, on every path (RFC 6455 §5.5.1). Every close the server decides (1008 slow
/// consumer, 1009 too big, 1012 shutdown, 4001 token expiry, 1000 answering the peer) goes through
/// <see cref="RequestClose"/>: from then on the send loop starts no data frame, drops what is still queued, and sends
/// Close right after the frame it may be writing, so the Close never waits behind a queue that the close timeout could
/// cut short. The runtime writes too: on a protocol error it sends Close 1002 (1007 for bad UTF-8) itself, from inside
/// <c>ReceiveAsync</c>, and a <c>SendAsync</c> that checked the state before that can still land after it; the
/// <see cref="CloseLastStream"/> under the socket drops every byte after the first Close, whoever wrote it. The socket
/// is aborted only if the handshake does not finish within <see cref="ChatOptions.CloseTimeout"/> (a peer that does
/// not read or does not answer), and is disposed only when that does not abort the connection (see <see cref="Release"/>).
/// </para>
/// </summary>
internal sealed class ChatConnection : IFrameSink
{
    /// <summary>1012, service restart: not in the enum, valid on the wire (RFC 6455 registry).</summary>
    public const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;

    /// <summary>4001, token expired (PROTOCOL.md, authentication): private use, valid on the wire.</summary>
    public const WebSocketCloseStatus TokenExpired = (WebSocketCloseStatus)4001;

    /// <summary>API.md: the operator removed the connection from its room (a kick, a ban).</summary>
    public const WebSocketCloseStatus RemovedFromRoom = (WebSocketCloseStatus)4003;

    private int _closeStatus;          // 0 until the first RequestClose: the first reason wins
    private string? _closeDescription; // set with the first reason, when its caller gives one

    private readonly WebSocket _socket;
    private readonly CloseLastStream _wire;
    private readonly ChatOptions _options;
    private readonly ILogger _logger;
    private readonly ChatMetrics _metrics;
    private readonly Channel<ReadOnlyMemory<byte>> _outgoing;
    private readonly TaskCompletionSource _closeRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly WriteDelay _writeDelay;
    private long _lastWrite;

    /// <summary><paramref name="wire"/>: the stream under <paramref name="socket"/>; the connection owns both.</summary>
    public ChatConnection(string id, WebSocket socket, CloseLastStream wire, ChatOptions options, WriteDelay writeDelay, ChatMetrics metrics,
        ILogger logger)
    {
        Id = id;
        _writeDelay = writeDelay;
        _socket = socket;
        _wire = wire;
        _options = options;
        _logger = logger;
        _metrics = metrics;
        _outgoing = Channel.CreateBounded<ReadOnlyMemory<byte>>(new BoundedChannelOptions(options.OutgoingQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,   // with TryWrite: false means full (DropWrite would hide it)
            // An idle send loop resumes on the writer's thread: the room's pump writes the frame to the transport
            // itself (Kestrel's pipe takes it without blocking; its flush goes async only when the member is behind,
            // and then the loop carries on by itself), instead of queueing one thread-pool work item per delivery. The
            // loop's own end never runs on a writer's thread (RunAsync yields; see there).
            AllowSynchronousContinuations = true,
        });
    }

    /// <summary>Unique across instances; notifications name their origin with it.</summary>
    public string Id { get; }

    public WebSocketCloseStatus CloseStatus => (WebSocketCloseStatus)Volatile.Read(ref _closeStatus);

    /// <summary>Queues one text frame. Never blocks: a full queue means the peer is not reading, and it is closed.</summary>
    public bool TryEnqueue(ReadOnlyMemory<byte> frame)
    {
        if (_outgoing.Writer.TryWrite(frame))
        {
            return true;
        }

        if (Volatile.Read(ref _closeStatus) == 0)
        {
            ConnectionLog.QueueFull(_logger, Id, _options.OutgoingQueueCapacity);
            _metrics.SlowConsumerClosed();
            RequestClose(WebSocketCloseStatus.PolicyViolation);
        }

        return false;
    }

    /// <summary>The operator removed the connection from its room: 4003, with the reason (or the default sentence when empty).</summary>
    public void Remove(string reason) => RequestClose(RemovedFromRoom, string.IsNullOrWhiteSpace(reason) ? null : FitCloseReason(reason));

    /// <summary>A Close frame's reason holds at most 123 bytes of UTF-8: cut on a character boundary.</summary>
    internal static string FitCloseReason(string reason)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(reason) <= 123)
        {
            return reason;
        }

        var bytes = 0;
        var end = 0;
        foreach (var rune in reason.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > 123)
            {
                break;
            }

            bytes += rune.Utf8SequenceLength;
            end += rune.Utf16SequenceLength;
        }

        return reason[..end];
    }

    /// <summary>
    /// Asks the connection to close with <paramref name="status"/> (and <paramref name="description"/> as the Close's
    /// reason, when given); the first request wins. The one way the server closes a connection: frames still queued are
    /// dropped and the Close is the last frame sent.
    /// </summary>
    public void RequestClose(WebSocketCloseStatus status, string? description = null)
    {
        TrySetCloseStatus(status, description);

        _outgoing.Writer.TryComplete();
        _closeRequested.TrySetResult();
    }

    /// <summary>
    /// Runs both loops until the connection ends. The session's close starts as soon as either side decides to
    /// close and runs beside the close handshake, so room membership (and the leave notification) ends at once, not
    /// after a non-reading peer has used up the close timeout.
    /// </summary>
    public async Task RunAsync(ChatSession session, FrameDispatcher dispatcher, CancellationToken requestAborted)
    {
        var receiving = ReceiveLoopAsync(session, dispatcher, requestAborted);
        var sending = SendLoopAsync();
        // Forced to yield: the send loop may end on the thread of whoever wrote to the queue (a room's pump), and what
        // follows (leaving the room, the close handshake) must not run there.
        await ((Task)Task.WhenAny(receiving, sending, _closeRequested.Task)).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        if (_wire.SentCloseStatus is { } sent)
        {
            Interlocked.CompareExchange(ref _closeStatus, sent, 0);   // the runtime failed the peer (1002, 1007)
        }

        var closing = session.CloseAsync();
        RequestClose(WebSocketCloseStatus.NormalClosure);
        try
        {
            await Task.WhenAll(receiving, sending).WaitAsync(_options.CloseTimeout, CancellationToken.None)
                .ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }
        catch (TimeoutException)
        {
            ConnectionLog.Aborted(_logger, Id);
            _socket.Abort();
            await Task.WhenAll(receiving, sending).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }

        await closing;
        Release();
        ConnectionLog.Closed(_logger, Id, CloseStatus);
    }

    /// <summary>
    /// Disposes the socket, unless it is already aborted: by the runtime after a protocol error or a vanished peer, or
    /// by the close timeout above. ASP.NET Core turns the disposal of an aborted socket into <c>HttpContext.Abort()</c>,
    /// which throws away output Kestrel has not written yet, the runtime's Close 1002 among it; a request that simply
    /// ends lets Kestrel write it and end the TCP stream with a FIN. The aborted socket is then left to the collector
    /// (its keep-alive timer holds it only weakly, and can write nothing past the Close).
    /// </summary>
    private void Release()
    {
        if (_socket.State != WebSocketState.Aborted)
        {
            _socket.Dispose();
        }
    }

    private async Task ReceiveLoopAsync(ChatSession session, FrameDispatcher dispatcher, CancellationToken requestAborted)
    {
        var limit = _options.MaxFrameBytes;
        try
        {
            while (true)
            {
                // Wait for a frame with no buffer, and rent one only while a frame is read and handled: an idle socket
                // holds none (a pooled MaxFrameBytes + 1 buffer is 32 KiB, ten thousand idle sockets 320 MiB).
                var result = await _socket.ReceiveAsync(Memory<byte>.Empty, requestAborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                var buffer = ArrayPool<byte>.Shared.Rent(limit + 1);
                try
                {
                    var length = 0;
                    while (!result.EndOfMessage)   // an empty frame is complete after the zero-byte read
                    {
                        result = await _socket.ReceiveAsync(buffer.AsMemory(length, limit + 1 - length), requestAborted);
                        length += result.Count;
                        if (length > limit)
                        {
                            ConnectionLog.FrameTooBig(_logger, Id, limit);
                            _metrics.FrameRejected("too_big");
                            RequestClose(WebSocketCloseStatus.MessageTooBig);   // 1009
                            return;
                        }
                    }

                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    await dispatcher.DispatchAsync(session, result.MessageType, buffer.AsMemory(0, length));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer vanished or the request was aborted: normal ends of a connection, not errors.
        }
    }

    private async Task SendLoopAsync()
    {
        try
        {
            var reader = _outgoing.Reader;
            while (await reader.WaitToReadAsync(CancellationToken.None))
            {
                if (_writeDelay.Holds(_lastWrite) && Volatile.Read(ref _closeStatus) == 0)
                {
                    await _writeDelay.NextTick;   // busy: what arrives meanwhile goes out in the same write
                }

                _lastWrite = _writeDelay.Writing();
                if (!await SendQueuedAsync(reader))
                {
                    break;   // a close is decided: no data frame starts after it; what is still queued is dropped
                }
            }

            // Our Close, unless the runtime has sent one (a protocol error) or the socket is gone.
            if (!_wire.CloseSent && _socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                var status = CloseStatus == 0 ? WebSocketCloseStatus.NormalClosure : CloseStatus;
                await _socket.CloseOutputAsync(status, Volatile.Read(ref _closeDescription) ?? Describe(status), CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The peer vanished mid-send, or the runtime failed the connection (its Close went out; see CloseLastStream).
        }
    }

    /// <summary>
    /// Sends every frame queued now. While another frame follows, the wire holds the bytes back, so the whole burst
    /// reaches the transport as one write and one flush (one <c>send</c>, one wake-up) instead of one per frame; the
    /// last frame of the burst writes them all. False once a close is decided (the loop then sends the Close, which
    /// writes anything held before it).
    /// </summary>
    private async ValueTask<bool> SendQueuedAsync(ChannelReader<ReadOnlyMemory<byte>> reader)
    {
        try
        {
            while (reader.TryRead(out var frame))
            {
                if (Volatile.Read(ref _closeStatus) != 0 || _wire.CloseSent)
                {
                    return false;
                }

                _metrics.FrameSent(frame.Span);   // counted before the write, so a client holding a frame sees it counted
                _wire.HoldWrites = reader.TryPeek(out _);
                await _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            }

            return true;
        }
        finally
        {
            _wire.HoldWrites = false;
        }
    }

    /// <summary>Records the first close reason; true for the first caller.</summary>
    private bool TrySetCloseStatus(WebSocketCloseStatus status, string? description)
    {
        if (Interlocked.CompareExchange(ref _closeStatus, (int)status, 0) != 0)
        {
            return false;
        }

        Volatile.Write(ref _closeDescription, description);
        return true;
    }

    private static string Describe(WebSocketCloseStatus status) => status switch
    {
        WebSocketCloseStatus.PolicyViolation => "Outgoing queue full: the client is not reading.",
        WebSocketCloseStatus.MessageTooBig => "Frame too big.",
        ServiceRestart => "Server restarting; reconnect.",
        TokenExpired => "Token expired.",
        RemovedFromRoom => "removed from the room",
        _ => "",
    };
}
