using System.Net;
using System.Net.Sockets;
using System.Text;
using ChatServer.Rooms;
using StackExchange.Redis;

namespace ChatServer.Hosting;

/// <summary>
/// The room channels' subscriptions on a Redis connection of the server's own: one socket and one thread that waits in
/// a blocking receive, parses what Redis pushes and hands each message to its channel's handlers right there, in the
/// order Redis sent them. A message costs one wake-up of one thread, where the client library's ordered subscription
/// queue passed it from its reader to the thread pool (issue 11, docs/benchmarks.md).
/// <para>
/// At most once, like any Redis pub/sub: while the connection is down nothing arrives. It reconnects by itself (at
/// once after a lost connection; backing off to <see cref="MaxBackoff"/> while connecting fails), subscribes again to every
/// channel that has a handler, and once Redis has confirmed them raises <see cref="Restored"/>, so rooms catch up from
/// history. Used when Redis is one endpoint without TLS and rooms
/// use classic pub/sub (<see cref="IsUsable"/>); everything else stays on StackExchange.Redis.
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
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Action<ReadOnlyMemory<byte>>[]> _handlers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Action<ReadOnlyMemory<byte>>[]>.AlternateLookup<ReadOnlySpan<char>> _byName;
    private readonly Queue<TaskCompletionSource?> _confirmations = new();   // one per channel of each SUBSCRIBE sent
    private static readonly TaskCompletionSource s_restoredMarker = new();   // the last confirmation of a resubscribe
    private Socket? _socket;   // connected, and SUBSCRIBE sent for every channel in _handlers; null while down
    private volatile bool _disposed;
    private Thread? _thread;
    private byte[] _buffer = new byte[16 * 1024];
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RedisSubscriber(EndPoint endPoint, string? user, string? password, string clientName, TimeSpan timeout, ILogger logger)
    {
        (_endPoint, _user, _password, _clientName, _timeout, _logger) = (endPoint, user, password, clientName, timeout, logger);
        _byName = _handlers.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Raised on the subscriber's thread after a lost connection is back and subscribed again.</summary>
    public event Action? Restored;

    /// <summary>Connected and subscribed (tests; health).</summary>
    public bool IsConnected => Volatile.Read(ref _socket) is not null;

    /// <summary>Completes when the first connection is up (start-up waits for it, within the connect timeout).</summary>
    public Task Connected => _connected.Task;

    /// <summary>Whether this subscriber can serve <paramref name="configuration"/> (else the client library does).</summary>
    public static bool IsUsable(ConfigurationOptions configuration, RedisOptions options) =>
        options.DirectPubSub
        && options.PubSub == RedisPubSubMode.Classic
        && configuration.EndPoints.Count == 1
        && configuration.EndPoints[0] is IPEndPoint or DnsEndPoint
        && !configuration.Ssl
        && configuration.ServiceName is null
        && configuration.Proxy == Proxy.None
        && configuration.ChannelPrefix.IsNullOrEmpty;

    /// <summary>Starts the subscriber's thread, which connects (and keeps reconnecting) in the background.</summary>
    public static RedisSubscriber Start(ConfigurationOptions configuration, ILogger logger)
    {
        var subscriber = new RedisSubscriber(configuration.EndPoints[0], configuration.User, configuration.Password,
            (configuration.ClientName ?? "chatserver") + "-pubsub", TimeSpan.FromMilliseconds(configuration.AsyncTimeout), logger);
        subscriber._thread = new Thread(subscriber.Run) { IsBackground = true, Name = "Redis pub/sub" };
        subscriber._thread.Start();
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

    public void Dispose()
    {
        Socket? socket;
        lock (_lock)
        {
            _disposed = true;
            (socket, _socket) = (_socket, null);
        }

        RespSocket.Close(socket);
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
                ReceivePushes(socket);
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
            RespSocket.Exchange(socket, RespSocket.Setup(_user, _password, _clientName), _timeout);
            return socket;
        }
        catch
        {
            RespSocket.Close(socket);
            throw;
        }
    }

    /// <summary>The thread's loop while connected: receive, then hand every complete push on.</summary>
    private void ReceivePushes(Socket socket)
    {
        int start = 0, end = 0;
        while (true)
        {
            if (end == _buffer.Length)
            {
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

            var received = socket.Receive(_buffer, end, _buffer.Length - end, SocketFlags.None);
            if (received == 0)
            {
                throw new IOException("Redis closed the pub/sub connection.");
            }

            end += received;
            while (RespPush.TryRead(_buffer.AsSpan(start, end - start), out var push, out var consumed))
            {
                Handle(_buffer.AsSpan(start, consumed), push);
                start += consumed;
            }

            if (start == end)
            {
                start = end = 0;
            }
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

    /// <summary>The connection is gone: nothing is subscribed, and whoever waits for a confirmation hears so.</summary>
    private void Drop(Socket socket)
    {
        TaskCompletionSource?[] waiting;
        lock (_lock)
        {
            if (_socket == socket)
            {
                _socket = null;
            }

            waiting = [.. _confirmations];
            _confirmations.Clear();
        }

        RespSocket.Close(socket);
        foreach (var confirmed in waiting)
        {
            if (confirmed != s_restoredMarker)
            {
                confirmed?.TrySetException(new StoreUnavailableException("The Redis pub/sub connection was lost."));
            }
        }
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
