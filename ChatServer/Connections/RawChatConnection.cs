using System.Buffers;
using System.Net.WebSockets;
using ChatServer.Hosting;
using ChatServer.Rooms;
using ChatServer.WebSockets;

namespace ChatServer.Connections;

/// <summary>
/// A WebSocket framed by us (RFC 6455) on the TCP connection Kestrel accepted, with no HTTP/1.1 connection, pipe
/// stream or <see cref="WebSocket"/> under it (see <see cref="DirectUpgrade"/>). Two things make it cheaper than the
/// stock path, per delivery and per idle socket:
/// <list type="bullet">
/// <item>Sending: the thread that delivers a frame writes it to the socket itself (<see cref="WireOutput"/>), and a
/// room's frame is framed once per instance (<see cref="SharedFrame"/>). Only when the socket cannot take a frame at
/// once does a write go asynchronous; frames that arrive meanwhile wait in a small queue (made then, dropped when it
/// empties) and go out together in one write. More than <see cref="ChatOptions.OutgoingQueueCapacity"/> waiting means
/// the peer is not reading: 1008.</item>
/// <item>Receiving: one <see cref="WsFrameReader"/> over Kestrel's input pipe; it holds a buffer only while a message
/// is being read, so an idle socket costs this object, its reader and a pending pipe read.</item>
/// </list>
/// The Close is the last frame on every path: <see cref="RequestClose"/> takes the same lock as every send, drops what
/// waits, and writes the Close at once or right after the write in progress; nothing is written after it. Keep-alive
/// pings and the shutdown close come from <see cref="RawConnections"/>, one timer for all sockets.
/// </summary>
internal sealed class RawChatConnection : ChatConnection
{
    private readonly Microsoft.AspNetCore.Connections.ConnectionContext _transport;
    private readonly WireOutput _output;
    private readonly ChatOptions _options;
    private readonly ChatMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private ChatSession? _session;                    // its leave starts once, at the first close decision
    private Task? _closing;
    private Queue<ReadOnlyMemory<byte>>? _waiting;   // frames behind a write in progress; null while none wait
    private byte[]? _closeWaiting;                    // our Close, behind the write in progress
    private bool _writing;                            // a write did not complete at once; DrainAsync owns the output
    private SendBatch? _batch;                        // the batch holding this socket's next write, while it is filled
    private int _batchIndex;                          // this socket's entry in it
    private bool _broken;                             // a write failed: the peer is gone
    private TaskCompletionSource? _idle;              // completed when the output has nothing left to write
    private volatile bool _ended;                     // RunAsync is done: nothing left to abort
    private volatile bool _receiveEnded;              // the receive loop is over: no answer to wait for

    // Keep-alive state, read and written by RawConnections' sweep (and the receive loop).
    internal volatile bool ReceivedSinceSweep;
    internal volatile bool PingOutstanding;

    // RawConnections' list of open sockets (guarded by its lock).
    internal RawChatConnection? Previous;
    internal RawChatConnection? Next;

    public RawChatConnection(string id, Microsoft.AspNetCore.Connections.ConnectionContext transport, WireOutput output,
        ChatOptions options, ChatMetrics metrics, ILogger logger)
        : base(id)
    {
        (_transport, _output, _options, _metrics, _logger) = (transport, output, options, metrics, logger);
    }

    public override bool TryEnqueue(ReadOnlyMemory<byte> frame) => Send(WsFrame.Text(frame.Span), frame.Span);

    public override bool TryEnqueue(SharedFrame frame) => Send(frame.Wire, frame.Payload.Span);

    /// <summary>A keep-alive ping (empty payload); false when closing or behind.</summary>
    internal bool SendPing() => Send(PingFrame, default, counted: false);

    /// <summary>Ends the TCP connection without a close handshake (a peer that stopped answering).</summary>
    internal void Abort()
    {
        ConnectionLog.Aborted(_logger, Id);
        _transport.Abort(new Microsoft.AspNetCore.Connections.ConnectionAbortedException("The peer stopped answering."));
    }

    private static readonly byte[] PingFrame = WsFrame.Control(WsOpcode.Ping, default);

    private bool Send(ReadOnlyMemory<byte> wire, ReadOnlySpan<byte> json, bool counted = true)
    {
        ValueTask pending;
        bool full;
        lock (_gate)
        {
            if (_closeStatus != 0 || _broken)
            {
                return false;
            }

            if (!_writing)
            {
                if (counted)
                {
                    _metrics.FrameSent(json);   // counted before the write, so a client holding a frame sees it counted
                }

                if (SendBatch.Current is { } batch && _output.Socket is { } socket && batch.TryAdd(this, socket, wire) is >= 0 and var index)
                {
                    (_writing, _batch, _batchIndex) = (true, batch, index);   // the batch owns the output until Written
                    return true;
                }

                if (!TryWrite(wire, out pending))
                {
                    return !_broken;   // written at once (or the connection broke)
                }

                full = false;
            }
            else if (_batch is { } batch && batch == SendBatch.Current && _waiting is not { Count: > 0 } && batch.TryAppend(_batchIndex, wire))
            {
                // Behind this socket's frame in the batch being filled on this thread.
                if (counted)
                {
                    _metrics.FrameSent(json);
                }

                return true;
            }
            else if ((_waiting ??= new Queue<ReadOnlyMemory<byte>>()).Count < _options.OutgoingQueueCapacity)
            {
                _waiting.Enqueue(wire);
                if (counted)
                {
                    _metrics.FrameSent(json);
                }

                return true;
            }
            else
            {
                (pending, full) = (default, true);   // the peer is not reading: closed below, outside the lock
            }
        }

        if (!full)
        {
            _ = DrainAsync(pending);
            return true;
        }

        ConnectionLog.QueueFull(_logger, Id, _options.OutgoingQueueCapacity);
        _metrics.SlowConsumerClosed();
        RequestClose(WebSocketCloseStatus.PolicyViolation);
        return false;
    }

    /// <summary>
    /// Under the lock, with the output free: writes <paramref name="wire"/>. False when it went out at once (or the
    /// connection broke); true when <paramref name="pending"/> must be drained, the output then being owned by the drain.
    /// </summary>
    private bool TryWrite(ReadOnlyMemory<byte> wire, out ValueTask pending)
    {
        try
        {
            pending = _output.WriteAsync(wire);
            if (pending.IsCompletedSuccessfully)
            {
                pending.GetAwaiter().GetResult();
                return false;
            }

            _writing = true;
            return true;
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            Broke();
            pending = default;
            return false;
        }
    }

    /// <summary>
    /// A <see cref="SendBatch"/> sent this socket's frame(s): <paramref name="failed"/> when the socket returned an
    /// error (the peer is gone: the connection ends), else <paramref name="rest"/> is what it did not take. The rest and
    /// whatever queued behind it go out as after any write.
    /// </summary>
    internal void Written(bool failed, ReadOnlyMemory<byte> rest)
    {
        lock (_gate)
        {
            _batch = null;
            if (failed)
            {
                Broke();
                return;
            }
        }

        ValueTask pending = default;
        if (rest.Length > 0)
        {
            try
            {
                pending = _output.WriteAsync(rest);
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException or IOException or InvalidOperationException)
            {
                lock (_gate)
                {
                    Broke();
                }

                return;
            }
        }

        _ = DrainAsync(pending);   // nothing left and nothing waiting: frees the output at once
    }

    /// <summary>Owns the output until nothing waits: the write in progress, then everything queued behind it in one write.</summary>
    private async Task DrainAsync(ValueTask pending)
    {
        try
        {
            await pending;
            while (true)
            {
                ReadOnlyMemory<byte> next;
                byte[]? rented = null;
                lock (_gate)
                {
                    if (_waiting is { Count: > 0 } waiting)
                    {
                        next = Coalesce(waiting, out rented);
                    }
                    else if (_closeWaiting is { } close)
                    {
                        (next, _closeWaiting) = (close, null);
                    }
                    else
                    {
                        (_writing, _waiting) = (false, null);
                        _idle?.TrySetResult();
                        return;
                    }
                }

                try
                {
                    await _output.WriteAsync(next);
                }
                finally
                {
                    if (rented is not null)
                    {
                        ArrayPool<byte>.Shared.Return(rented);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException or IOException or
            OperationCanceledException or InvalidOperationException)
        {
            lock (_gate)
            {
                Broke();
            }
        }
    }

    /// <summary>Under the lock: the frames waiting, as one buffer (up to 64 KiB; the rest stays queued).</summary>
    private static ReadOnlyMemory<byte> Coalesce(Queue<ReadOnlyMemory<byte>> waiting, out byte[]? rented)
    {
        if (waiting.Count == 1)
        {
            rented = null;
            return waiting.Dequeue();
        }

        const int Limit = 64 * 1024;
        var total = 0;
        foreach (var frame in waiting)
        {
            if (total > 0 && total + frame.Length > Limit)
            {
                break;
            }

            total += frame.Length;
        }

        rented = ArrayPool<byte>.Shared.Rent(total);
        var length = 0;
        while (waiting.Count > 0 && length + waiting.Peek().Length <= total)
        {
            var frame = waiting.Dequeue();
            frame.Span.CopyTo(rented.AsSpan(length));
            length += frame.Length;
        }

        return rented.AsMemory(0, length);
    }

    /// <summary>Under the lock: a write failed; nothing more is written and the connection ends.</summary>
    private void Broke()
    {
        (_broken, _waiting, _closeWaiting) = (true, null, null);
        _idle?.TrySetResult();
        // Ends the receive loop. Not under this lock: aborting fires the connection's token, whose callbacks may run
        // other code inline.
        ThreadPool.UnsafeQueueUserWorkItem(static transport => transport.Abort(), _transport, preferLocal: false);
    }

    public override void RequestClose(WebSocketCloseStatus status, string? description = null)
    {
        if (!TrySetCloseStatus(status, description))
        {
            return;
        }

        var close = WsFrame.Close((int)status, description ?? Describe(status));
        ValueTask pending = default;
        var drain = false;
        lock (_gate)
        {
            _waiting?.Clear();   // no data frame starts after a close is decided
            if (!_broken)
            {
                if (_writing)
                {
                    _closeWaiting = close;   // right after the frame being written
                }
                else
                {
                    drain = TryWrite(close, out pending);
                }
            }
        }

        if (drain)
        {
            _ = DrainAsync(pending);
        }

        StartClosing();
        if (!_receiveEnded)
        {
            _ = EndAfterCloseTimeoutAsync();   // else the peer's Close (or its end) is in: RunAsync bounds the rest
        }
    }

    /// <summary>
    /// Leaves the room at once when a close is decided, beside the close handshake, so a peer that does not read or
    /// answer does not keep its membership for the close timeout. On the thread pool: the decision may be taken on a
    /// delivering thread.
    /// </summary>
    private void StartClosing()
    {
        lock (_gate)
        {
            if (_closing is null && _session is { } session)
            {
                _closing = Task.Run(session.CloseAsync);
            }
        }
    }

    /// <summary>
    /// The close handshake gets <see cref="ChatOptions.CloseTimeout"/> for the peer's answer; then the connection ends
    /// gracefully: the receive loop stops, and Kestrel closes the TCP connection with a FIN behind our Close, which
    /// the kernel still delivers to a peer that reads later. A peer that is not even reading what was written before
    /// the Close (our Close still waits in this process, as for a slow consumer's 1008) gets one
    /// <see cref="ChatOptions.KeepAlive"/> interval more to take it; if it never makes room, the connection is cut off.
    /// </summary>
    private async Task EndAfterCloseTimeoutAsync()
    {
        await Task.Delay(_options.CloseTimeout).ConfigureAwait(false);
        var output = OutputIdleAsync();
        if (!_ended && !output.IsCompleted)
        {
            await Task.WhenAny(output, Task.Delay(_options.KeepAlive)).ConfigureAwait(false);
            if (!output.IsCompleted)
            {
                Abort();
                return;
            }

            await Task.Delay(_options.CloseTimeout).ConfigureAwait(false);   // the Close is out now: time to answer it
        }

        if (!_ended)
        {
            _transport.Transport.Input.CancelPendingRead();   // the receive loop ends; RunAsync returns; Kestrel sends FIN
        }
    }

    /// <summary>Completes when nothing is left to write (our Close is out, or the connection broke).</summary>
    private Task OutputIdleAsync()
    {
        lock (_gate)
        {
            if (!_writing || _broken)
            {
                return Task.CompletedTask;
            }

            return (_idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    public override async Task RunAsync(ChatSession session, FrameDispatcher dispatcher, CancellationToken requestAborted)
    {
        // One task per connection: the receive loop, and the close after it. No task waits for a close request:
        // RequestClose itself starts the leave and the close timer, and this loop, reading on past our Close, ends with
        // the peer's Close, the stream's end, or the abort.
        lock (_gate)
        {
            _session = session;
        }

        if (Volatile.Read(ref _closeStatus) != 0)
        {
            StartClosing();   // closed before it ran (shutdown)
        }

        // The receive loop, reading until the peer's Close, a protocol error, the end of the stream or an abort. Its frame
        // reader exists only while bytes are being decoded (or a fragmented message is half read): an idle socket waits
        // on its pipe alone.
        var input = _transport.Transport.Input;
        WsFrameReader? reader = null;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(CancellationToken.None);   // the end comes from the peer or an abort
                var buffer = result.Buffer;
                long position = 0;
                var end = false;
                reader ??= new WsFrameReader(_options.MaxFrameBytes);
                try
                {
                    while (!end)
                    {
                        var read = reader.TryRead(buffer.Slice(position), out var consumed);
                        position += consumed;
                        if (read == WsReadResult.NeedMoreData)
                        {
                            break;
                        }

                        (ReceivedSinceSweep, PingOutstanding) = (true, false);
                        switch (read)
                        {
                            case WsReadResult.Message when Volatile.Read(ref _closeStatus) == 0:
                                await dispatcher.DispatchAsync(session,
                                    reader.MessageType == WsOpcode.Text ? WebSocketMessageType.Text : WebSocketMessageType.Binary, reader.Payload);
                                break;
                            case WsReadResult.Ping:
                                Send(WsFrame.Control(WsOpcode.Pong, reader.Payload.Span), default, counted: false);
                                break;
                            case WsReadResult.Close:
                                end = true;   // RunAsync answers it (1000) once this loop ends
                                break;
                            case WsReadResult.Error:
                                Fail(reader.ErrorCode, reader.ErrorReason);
                                end = true;
                                break;
                        }
                    }
                }
                finally
                {
                    input.AdvanceTo(buffer.GetPosition(position), end ? buffer.GetPosition(position) : buffer.End);
                }

                if (end || result.IsCompleted || result.IsCanceled)
                {
                    break;
                }

                if (reader.IsIdle)
                {
                    reader.Dispose();
                    reader = null;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or
            Microsoft.AspNetCore.Connections.ConnectionAbortedException or InvalidOperationException)
        {
            // The peer vanished or the connection was aborted: normal ends of a connection, not errors.
        }
        finally
        {
            reader?.Dispose();
        }

        _receiveEnded = true;
        await Task.Yield();   // what follows (the close) never runs on the thread that delivered the last bytes
        RequestClose(WebSocketCloseStatus.NormalClosure);   // the answer to the peer's Close, unless we closed first
        StartClosing();
        try
        {
            // Our Close out (a peer still being written to gets the same allowance as above); then the handler returns
            // and Kestrel ends the TCP connection with a FIN.
            await OutputIdleAsync().WaitAsync(_options.CloseTimeout + _options.KeepAlive, CancellationToken.None)
                .ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        }
        catch (TimeoutException)
        {
            Abort();
        }

        _ended = true;
        Task closing;
        lock (_gate)
        {
            closing = _closing!;
        }

        await closing;
        ConnectionLog.Closed(_logger, Id, CloseStatus);
    }

    /// <summary>The peer broke RFC 6455 (1002), sent bad UTF-8 (1007) or too big a message (1009): Close, then the TCP end.</summary>
    private void Fail(int code, string reason)
    {
        if (code == (int)WebSocketCloseStatus.MessageTooBig)
        {
            ConnectionLog.FrameTooBig(_logger, Id, _options.MaxFrameBytes);
            _metrics.FrameRejected("too_big");
            RequestClose(WebSocketCloseStatus.MessageTooBig);   // the same reason as the stock path gives
            return;
        }

        RequestClose((WebSocketCloseStatus)code, reason);
    }
}
