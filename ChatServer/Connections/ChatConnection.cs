using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;
using ChatServer.Hosting;

namespace ChatServer.Connections;

/// <summary>
/// One WebSocket: exactly one receive loop and one send loop (a WebSocket allows one of each at a time). Anything that
/// wants to write calls <see cref="TryEnqueue"/>; only the send loop calls <c>SendAsync</c>. Closing never cancels a
/// pending operation (that aborts the socket): the queue is completed, the send loop drains it and sends Close, and
/// the socket is aborted only if the handshake does not finish within <see cref="ChatOptions.CloseTimeout"/>.
/// </summary>
internal sealed class ChatConnection
{
    /// <summary>1012, service restart: not in the enum, valid on the wire (RFC 6455 registry).</summary>
    public const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;

    private readonly WebSocket _socket;
    private readonly ChatOptions _options;
    private readonly ILogger _logger;
    private readonly ChatMetrics _metrics;
    private readonly Channel<ReadOnlyMemory<byte>> _outgoing;
    private readonly TaskCompletionSource _closeRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closeStatus;          // 0 until the first RequestClose: the first reason wins
    private string? _closeDescription; // set with the first reason, when its caller gives one
    private volatile bool _discardQueued;

    public ChatConnection(string id, WebSocket socket, ChatOptions options, TimeProvider time, ChatMetrics metrics, ILogger logger)
    {
        Id = id;
        _socket = socket;
        _options = options;
        _logger = logger;
        _metrics = metrics;
        RateLimiter = new SendRateLimiter(time, options.RateLimitPerSecond, options.RateLimitBurst);
        _outgoing = Channel.CreateBounded<ReadOnlyMemory<byte>>(new BoundedChannelOptions(options.OutgoingQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,   // with TryWrite: false means full (DropWrite would hide it)
        });
    }

    /// <summary>Unique across instances; notifications name their origin with it.</summary>
    public string Id { get; }

    public SendRateLimiter RateLimiter { get; }

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
            _discardQueued = true;   // PROTOCOL.md: queued frames are dropped, Close is the next thing sent
            RequestClose(WebSocketCloseStatus.PolicyViolation);
        }

        return false;
    }

    /// <summary>Asks the connection to close with <paramref name="status"/>; the first request wins.</summary>
    public void RequestClose(WebSocketCloseStatus status, string? description = null)
    {
        if (Interlocked.CompareExchange(ref _closeStatus, (int)status, 0) == 0)
        {
            Volatile.Write(ref _closeDescription, description);
        }

        _outgoing.Writer.TryComplete();
        _closeRequested.TrySetResult();
    }

    /// <summary>
    /// Runs both loops until the connection ends. <paramref name="onClosing"/> starts as soon as either side decides to
    /// close and runs beside the close handshake, so room membership (and the leave notification) ends at once, not
    /// after a non-reading peer has used up the close timeout.
    /// </summary>
    public async Task RunAsync(Func<ChatConnection, WebSocketMessageType, ReadOnlyMemory<byte>, Task> dispatch,
        Func<Task> onClosing, CancellationToken requestAborted)
    {
        var receiving = ReceiveLoopAsync(dispatch, requestAborted);
        var sending = SendLoopAsync();
        await Task.WhenAny(receiving, sending, _closeRequested.Task);
        var closing = onClosing();
        RequestClose(WebSocketCloseStatus.NormalClosure);
        try
        {
            await Task.WhenAll(receiving, sending).WaitAsync(_options.CloseTimeout, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            ConnectionLog.Aborted(_logger, Id);
            _socket.Abort();
            await Task.WhenAll(receiving, sending);
        }

        await closing;
        ConnectionLog.Closed(_logger, Id, CloseStatus);
    }

    private async Task ReceiveLoopAsync(Func<ChatConnection, WebSocketMessageType, ReadOnlyMemory<byte>, Task> dispatch,
        CancellationToken requestAborted)
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

                    await dispatch(this, result.MessageType, buffer.AsMemory(0, length));
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
            await foreach (var frame in _outgoing.Reader.ReadAllAsync(CancellationToken.None))
            {
                if (_discardQueued)
                {
                    break;
                }

                _metrics.FrameSent(frame.Span);   // counted before the write, so a client holding a frame sees it counted
                await _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
            }

            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                var status = CloseStatus == 0 ? WebSocketCloseStatus.NormalClosure : CloseStatus;
                await _socket.CloseOutputAsync(status, Volatile.Read(ref _closeDescription) ?? Describe(status), CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The peer vanished mid-send.
        }
    }

    private static string Describe(WebSocketCloseStatus status) => status switch
    {
        WebSocketCloseStatus.PolicyViolation => "Outgoing queue full: the client is not reading.",
        WebSocketCloseStatus.MessageTooBig => "Frame too big.",
        ServiceRestart => "Server restarting; reconnect.",
        _ => "",
    };
}
