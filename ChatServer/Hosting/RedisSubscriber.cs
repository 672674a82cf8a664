using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChatServer.Connections;
using ChatServer.Rooms;
using StackExchange.Redis;

namespace ChatServer.Hosting;

/// <summary>
/// The server's own Redis connection: the room channels' subscriptions, and (speaking RESP3, on Redis 6 or later) the
/// append script. One socket and one thread that waits in a blocking receive, parses what Redis sends and hands each
/// pushed message to its channel's handlers right there, in the order Redis sent them, and each reply to the oldest
/// command, whose continuation (the sender's ack) runs right there too. A message costs one wake-up of one thread per
/// instance, where the client library passed it from the socket's event loop to its reader and on to the thread pool
/// (issue 11, docs/benchmarks.md); on the sending instance the reply and the message arrive together.
/// <para>
/// At most once, like any Redis pub/sub: while the connection is down nothing arrives, and commands fail at once with
/// <see cref="StoreUnavailableException"/> (the client library's fail-fast setting); a command unanswered within the
/// timeout fails and the connection is made again. It reconnects by itself (at once after a lost connection; backing
/// off to <see cref="MaxBackoff"/> while connecting fails), subscribes again to every channel that has a handler, and
/// once Redis has confirmed them raises <see cref="Restored"/>, so rooms catch up from history. Used when Redis is one
/// endpoint without TLS (<see cref="IsUsable"/>, <see cref="CanRunCommands"/>); everything else stays on
/// StackExchange.Redis.
/// </para>
/// </summary>
internal sealed class RedisSubscriber : IDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private const int MaxPushBytes = 64 * 1024 * 1024;
    private const int StackChannelChars = 256;

    private readonly EndPoint _endPoint;
    private readonly string? _user;
    private readonly string? _password;
    private readonly string _clientName;
    private readonly int? _database;
    private readonly bool _resp3;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;
    private readonly Timer? _watchdog;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Action<ReadOnlyMemory<byte>>[]> _handlers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Action<ReadOnlyMemory<byte>>[]>.AlternateLookup<ReadOnlySpan<char>> _byName;
    private readonly Queue<TaskCompletionSource?> _confirmations = new();   // one per channel of each SUBSCRIBE sent
    private static readonly TaskCompletionSource s_restoredMarker = new();   // the last confirmation of a resubscribe
    private readonly Queue<Pending> _pending = new();   // commands (RESP3 only), in the order they were written
    private Socket? _socket;   // connected, and SUBSCRIBE sent for every channel in _handlers; null while down
    private volatile bool _disposed;
    private bool _batchSends;   // deliveries of one read sent in one io_uring submission (SendBatch), where possible
    private TimeSpan _batchWindow;   // how long a batch with deliveries stays open for the reads that follow, under load
    private volatile SendBatch? _batch;
    private byte[] _buffer = new byte[16 * 1024];
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RedisSubscriber(EndPoint endPoint, string? user, string? password, string clientName, int? database, bool resp3,
        TimeSpan timeout, ILogger logger)
    {
        (_endPoint, _user, _password, _clientName, _database, _resp3, _timeout, _logger) =
            (endPoint, user, password, clientName, database, resp3, timeout, logger);
        _byName = _handlers.GetAlternateLookup<ReadOnlySpan<char>>();
        if (resp3)
        {
            var period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 50, 1000));
            _watchdog = new Timer(static s => ((RedisSubscriber)s!).DropIfStuck(), this, period, period);
        }
    }

    /// <summary>Raised on the subscriber's thread after a lost connection is back and subscribed again.</summary>
    public event Action? Restored;

    /// <summary>
    /// What this connection's thread sent in batches: frames (or joined frames), those a socket took only in part, and
    /// how many batches were held open for the reads that followed (the batch window) (tests).
    /// </summary>
    public (long Sent, long Short, long Held) BatchedSends =>
        _batch is { } batch ? (batch.Sent, batch.Short, Volatile.Read(ref _held)) : default;

    private long _held;

    /// <summary>Connected and subscribed (tests; health).</summary>
    public bool IsConnected => Volatile.Read(ref _socket) is not null;

    /// <summary>Completes when the first connection is up (start-up waits for it, within the connect timeout).</summary>
    public Task Connected => _connected.Task;

    /// <summary>Whether this subscriber can serve <paramref name="configuration"/> (else the client library does).</summary>
    public static bool IsUsable(ConfigurationOptions configuration, RedisOptions options) =>
        options.DirectPubSub
        && options.PubSub == RedisPubSubMode.Classic
        && IsOnePlainEndpoint(configuration)
        && configuration.ChannelPrefix.IsNullOrEmpty;

    /// <summary>
    /// Whether commands can run on this connection too (<paramref name="serverType"/> and <paramref name="version"/> from
    /// the client library's connection): RESP3 (Redis 6 or later), so pushes and replies share it, and not a Cluster
    /// node (keys would need routing by slot).
    /// </summary>
    public static bool CanRunCommands(ConfigurationOptions configuration, RedisOptions options, ServerType? serverType, Version? version) =>
        options.DirectCommands
        && serverType == ServerType.Standalone
        && version?.Major >= 6
        && IsOnePlainEndpoint(configuration);

    /// <summary>One host and port, reached without TLS, Sentinel or a proxy: what this connection can speak to.</summary>
    private static bool IsOnePlainEndpoint(ConfigurationOptions configuration) =>
        configuration.EndPoints.Count == 1
        && configuration.EndPoints[0] is IPEndPoint or DnsEndPoint
        && !configuration.Ssl
        && configuration.ServiceName is null
        && configuration.Proxy == Proxy.None;

    /// <summary>
    /// Starts the connection's thread, which connects (and keeps reconnecting) in the background. With
    /// <paramref name="resp3"/> it speaks RESP3 and runs commands as well.
    /// </summary>
    public static RedisSubscriber Start(ConfigurationOptions configuration, ILogger logger, bool resp3 = false, bool batchSends = false,
        TimeSpan batchWindow = default)
    {
        var subscriber = new RedisSubscriber(configuration.EndPoints[0], configuration.User, configuration.Password,
            (configuration.ClientName ?? "chatserver") + "-direct", configuration.DefaultDatabase, resp3,
            TimeSpan.FromMilliseconds(configuration.AsyncTimeout), logger) { _batchSends = batchSends, _batchWindow = batchWindow };
        new Thread(subscriber.Run) { IsBackground = true, Name = "Redis direct" }.Start();
        return subscriber;
    }

    /// <summary>
    /// Hands <paramref name="channel"/>'s messages to <paramref name="handler"/> (on the subscriber's thread; it must not
    /// block) once Redis has confirmed the subscription. Redis down or slow to confirm: <see cref="StoreUnavailableException"/>.
    /// </summary>
    public async Task<IAsyncDisposable> SubscribeAsync(string channel, Action<ReadOnlyMemory<byte>> handler, CancellationToken cancellationToken)
    {
        var confirmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_socket is not { } socket)
            {
                throw new StoreUnavailableException("The Redis pub/sub connection is down.");
            }

            _handlers[channel] = _handlers.TryGetValue(channel, out var handlers) ? [.. handlers, handler] : [handler];
            _confirmations.Enqueue(confirmed);
            SendLocked(socket, new RespCommand("SUBSCRIBE").Add(channel));   // a failed send drops the connection, which fails `confirmed`
        }

        try
        {
            await confirmed.Task.WaitAsync(_timeout, cancellationToken);
        }
        catch (Exception ex)
        {
            Unsubscribe(channel, handler);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw ex as StoreUnavailableException ?? new StoreUnavailableException("Redis did not confirm the subscription.", ex);
        }

        return new Subscription(this, channel, handler);
    }

    /// <summary>
    /// Sends <paramref name="command"/> and completes with its reply (an error reply too: check
    /// <see cref="RespValue.IsError"/>). The task completes on the connection's thread, which runs the caller's
    /// continuation (it must not block). Down, or no reply within the timeout: <see cref="StoreUnavailableException"/>.
    /// </summary>
    public Task<RespValue> ExecuteAsync(RespCommand command)
    {
        if (!_resp3)
        {
            throw new InvalidOperationException("Commands need the RESP3 connection.");
        }

        var bytes = command.ToArray();
        var pending = new Pending();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_socket is not { } socket)
            {
                throw new StoreUnavailableException("The Redis connection is down.");
            }

            _pending.Enqueue(pending);
            try
            {
                RespSocket.SendAll(socket, bytes);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                RespSocket.Shutdown(socket);   // the thread drops it, failing every command waiting on it, this one too
            }
        }

        return pending.Task;
    }

    public void Dispose()
    {
        Socket? socket;
        lock (_lock)
        {
            _disposed = true;
            (socket, _socket) = (_socket, null);
        }

        _watchdog?.Dispose();
        RespSocket.Close(socket);
    }

    /// <summary>The oldest command has waited longer than the timeout: the connection goes, and its commands fail.</summary>
    private void DropIfStuck()
    {
        lock (_lock)
        {
            if (_socket is { } socket && _pending.TryPeek(out var oldest) && oldest.Age > _timeout)
            {
                RespSocket.Shutdown(socket);
            }
        }
    }

    private void Unsubscribe(string channel, Action<ReadOnlyMemory<byte>> handler)
    {
        lock (_lock)
        {
            if (!_handlers.TryGetValue(channel, out var handlers) || Array.IndexOf(handlers, handler) is var at && at < 0)
            {
                return;
            }

            if (handlers.Length > 1)
            {
                _handlers[channel] = [.. handlers[..at], .. handlers[(at + 1)..]];
                return;
            }

            _handlers.Remove(channel);
            if (_socket is { } socket)
            {
                SendLocked(socket, new RespCommand("UNSUBSCRIBE").Add(channel));
            }
        }
    }

    /// <summary>Writes a command; on failure shuts the socket down, so the thread reconnects and resubscribes.</summary>
    private static void SendLocked(Socket socket, RespCommand command)
    {
        try
        {
            RespSocket.SendAll(socket, command.ToArray());
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            RespSocket.Shutdown(socket);
        }
    }

    private void Run()
    {
        // Made on this thread: only it submits to the ring.
        string? why = null;
        using var batch = _batchSends ? SendBatch.Create(out why) : null;
        _batch = batch;
        if (_batchSends && batch is null)
        {
            RedisLog.NoSendBatch(_logger, why ?? "unknown");
        }

        var failures = 0;
        var everConnected = false;
        while (!_disposed)
        {
            Socket socket;
            try
            {
                socket = Connect();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or InvalidDataException or TimeoutException)
            {
                if (failures++ == 0)
                {
                    RedisLog.ConnectionFailed(_logger, ConnectionType.Subscription, _endPoint.ToString(), ex);
                }

                Backoff(failures);
                continue;
            }

            failures = 0;
            var restoredNow = false;
            lock (_lock)
            {
                if (_disposed)
                {
                    RespSocket.Close(socket);
                    return;
                }

                if (_handlers.Count > 0)
                {
                    // Every channel again; a reconnect is reported once Redis has confirmed the last of them, so a
                    // catch-up read from then on misses nothing that pub/sub will not bring.
                    for (var i = 1; i < _handlers.Count; i++)
                    {
                        _confirmations.Enqueue(null);
                    }

                    _confirmations.Enqueue(everConnected ? s_restoredMarker : null);
                    SendLocked(socket, new RespCommand("SUBSCRIBE").AddRange(_handlers.Keys));
                }
                else
                {
                    restoredNow = everConnected;
                }

                _socket = socket;
            }

            _connected.TrySetResult();
            if (restoredNow)
            {
                OnRestored();
            }

            everConnected = true;
            try
            {
                ReceivePushes(socket, batch);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or InvalidDataException)
            {
                if (!_disposed)
                {
                    RedisLog.ConnectionFailed(_logger, ConnectionType.Subscription, _endPoint.ToString(), ex);
                }

                if (ex is InvalidDataException)
                {
                    failures++;   // Redis answered with an error: do not hammer it
                }
            }

            Drop(socket);
            if (failures > 0 && !_disposed)
            {
                Backoff(failures);
            }
        }
    }

    private static void Backoff(int failures) =>
        Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, 100 * Math.Pow(2, Math.Min(failures, 16) - 1))));

    private void OnRestored()
    {
        RedisLog.ConnectionRestored(_logger, ConnectionType.Subscription, _endPoint.ToString());
        Restored?.Invoke();
    }

    /// <summary>Connects, authenticates and names the connection; each step bounded by the timeout.</summary>
    private Socket Connect()
    {
        var socket = RespSocket.Connect(_endPoint, _timeout);
        try
        {
            List<RespCommand> setup;
            if (_resp3)
            {
                var hello = new RespCommand("HELLO").Add(3);
                if (_password is not null)
                {
                    hello.Add("AUTH").Add(_user ?? "default").Add(_password);
                }

                setup = [hello.Add("SETNAME").Add(_clientName)];
                if (_database is > 0)
                {
                    setup.Add(new RespCommand("SELECT").Add(_database.Value));
                }
            }
            else
            {
                setup = RespSocket.Setup(_user, _password, _clientName);
            }

            RespSocket.Exchange(socket, setup, _timeout);
            return socket;
        }
        catch
        {
            RespSocket.Close(socket);
            throw;
        }
    }

    /// <summary>
    /// The thread's loop while connected: receive, then hand every complete push on. What a read delivers goes out in
    /// one batch (<see cref="SendBatch"/>). While reads come closer together than the batch window (a busy instance),
    /// a batch holding deliveries stays open for the reads that follow, until the window from its first read is over:
    /// a member's messages from several reads then go out in one send, one TCP segment (issue 11: at 2,500 msg/s,
    /// 10 ms made a delivery ~40 % cheaper, docs/benchmarks.md). A read after a quiet spell is sent at once, so a
    /// lone message waits for nothing.
    /// </summary>
    private void ReceivePushes(Socket socket, SendBatch? batch)
    {
        int start = 0, end = 0;
        var sends = default(SendBatch.Scope);
        long openedAt = 0, lastReadAt = 0;
        try
        {
            while (true)
            {
                MakeRoom(ref start, ref end);
                if (sends.IsOpen)
                {
                    var left = _batchWindow - Stopwatch.GetElapsedTime(openedAt);
                    if (left <= TimeSpan.Zero || !socket.Poll(left, SelectMode.SelectRead))
                    {
                        sends.Dispose();   // the window is over: out it goes
                        sends = default;
                    }
                }

                var received = socket.Receive(_buffer, end, _buffer.Length - end, SocketFlags.None);
                if (received == 0)
                {
                    throw new IOException("Redis closed the pub/sub connection.");
                }

                end += received;
                var readAt = Stopwatch.GetTimestamp();
                var busy = Stopwatch.GetElapsedTime(lastReadAt, readAt) < _batchWindow;   // the last read was within the window
                lastReadAt = readAt;
                if (!sends.IsOpen && batch is not null)
                {
                    sends = batch.Open();   // what this read delivers goes out in one system call
                    openedAt = readAt;
                }

                HandleReceived(ref start, ref end, batch);
                if (sends.IsOpen && (!busy || batch!.IsEmpty))
                {
                    sends.Dispose();
                    sends = default;
                }
                else if (sends.IsOpen && readAt == openedAt)
                {
                    Volatile.Write(ref _held, _held + 1);   // a new batch waits for the reads that follow
                }
            }
        }
        finally
        {
            sends.Dispose();   // what was delivered before the connection failed still goes out
        }
    }

    /// <summary>Room after <paramref name="end"/> in a full buffer: the unread rest moved to the front, or the buffer grown.</summary>
    private void MakeRoom(ref int start, ref int end)
    {
        if (end < _buffer.Length)
        {
            return;
        }

        if (start > 0)
        {
            _buffer.AsSpan(start, end - start).CopyTo(_buffer);
            (start, end) = (0, end - start);
        }
        else if (_buffer.Length >= MaxPushBytes)
        {
            throw new InvalidDataException($"Redis sent a push larger than {MaxPushBytes} bytes.");
        }
        else
        {
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }
    }

    /// <summary>Hands on every complete reply and push received; an incomplete one stays for the next read.</summary>
    private void HandleReceived(ref int start, ref int end, SendBatch? batch)
    {
        while (start < end)
        {
            var input = _buffer.AsSpan(start, end - start);
            int consumed;
            if (_resp3 && input[0] != (byte)'>')
            {
                // RESP3: anything but a push is the reply to the oldest command.
                if (!RespValue.TryRead(input, out var reply, out consumed))
                {
                    break;
                }

                start += consumed;
                Complete(reply!);
                batch?.SendIfLarge();
                continue;
            }

            if (!RespPush.TryRead(input, out var push, out consumed))
            {
                break;
            }

            Handle(input[..consumed], push);
            start += consumed;
            batch?.SendIfLarge();
        }

        if (start == end)
        {
            start = end = 0;
        }
    }

    private void Handle(ReadOnlySpan<byte> value, RespPush push)
    {
        switch (push.Kind)
        {
            case RespPushKind.Message:
                var name = value[push.Channel];
                var chars = name.Length <= StackChannelChars ? stackalloc char[StackChannelChars] : new char[name.Length];
                var channel = chars[..Encoding.UTF8.GetChars(name, chars)];
                Action<ReadOnlyMemory<byte>>[]? handlers;
                lock (_lock)
                {
                    _byName.TryGetValue(channel, out handlers);
                }

                if (handlers is null)
                {
                    return;   // unsubscribed meanwhile
                }

                ReadOnlyMemory<byte> payload = value[push.Payload].ToArray();   // handlers may keep it
                foreach (var handler in handlers)
                {
                    try
                    {
                        handler(payload);
                    }
                    catch (Exception ex)
                    {
                        RedisLog.SubscriberHandlerFailed(_logger, ex);
                    }
                }

                return;
            case RespPushKind.Subscribe:
                TaskCompletionSource? confirmed;
                lock (_lock)
                {
                    _confirmations.TryDequeue(out confirmed);
                }

                if (confirmed == s_restoredMarker)
                {
                    OnRestored();
                }
                else
                {
                    confirmed?.TrySetResult();
                }

                return;
            case RespPushKind.Error:
                throw new InvalidDataException("Redis: " + Encoding.UTF8.GetString(value[push.Payload]));
        }
    }

    /// <summary>A command's reply: the oldest command gets it, and its continuation runs here.</summary>
    private void Complete(RespValue reply)
    {
        Pending? pending;
        lock (_lock)
        {
            _pending.TryDequeue(out pending);
        }

        if (pending is null)
        {
            throw new InvalidDataException($"Redis sent a reply to no command: {reply}");
        }

        pending.TrySetResult(reply);
    }

    /// <summary>The connection is gone: nothing is subscribed, and whoever waits for a confirmation or a reply hears so.</summary>
    private void Drop(Socket socket)
    {
        TaskCompletionSource?[] waiting;
        Pending[] commands;
        lock (_lock)
        {
            if (_socket == socket)
            {
                _socket = null;
            }

            waiting = [.. _confirmations];
            _confirmations.Clear();
            commands = [.. _pending];
            _pending.Clear();
        }

        RespSocket.Close(socket);
        foreach (var confirmed in waiting)
        {
            if (confirmed != s_restoredMarker)
            {
                confirmed?.TrySetException(new StoreUnavailableException("The Redis pub/sub connection was lost."));
            }
        }

        foreach (var command in commands)
        {
            command.TrySetException(new StoreUnavailableException("The Redis connection was lost before the reply."));
        }
    }

    /// <summary>A command waiting for its reply. Its task's continuations run on the connection's thread.</summary>
    private sealed class Pending : TaskCompletionSource<RespValue>
    {
        private readonly long _started = Environment.TickCount64;

        public TimeSpan Age => TimeSpan.FromMilliseconds(Environment.TickCount64 - _started);
    }

    private sealed class Subscription(RedisSubscriber subscriber, string channel, Action<ReadOnlyMemory<byte>> handler) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            subscriber.Unsubscribe(channel, handler);
            return ValueTask.CompletedTask;
        }
    }
}
