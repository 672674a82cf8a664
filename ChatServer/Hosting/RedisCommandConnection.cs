using System.Net;
using System.Net.Sockets;
using ChatServer.Rooms;
using StackExchange.Redis;

namespace ChatServer.Hosting;

/// <summary>
/// A pipelined Redis command connection of the server's own, for the one command on the per-message path (the append
/// script). The caller writes its command straight to the socket; one thread waits in a blocking receive, reads the
/// replies in order and completes each caller's task right there, so the caller's continuation (the ack) runs on that
/// thread: one wake-up per reply, where the client library went through the socket event loop and the thread pool
/// (issue 11, docs/benchmarks.md). Continuations must not block.
/// <para>
/// Like the client library's fail-fast setting: while the connection is down a command fails at once with
/// <see cref="StoreUnavailableException"/>; a command unanswered within the timeout fails, and the connection is
/// dropped and made again (a reply that never comes means the stream can no longer be trusted). Reconnects by itself,
/// at once after a drop, backing off to <see cref="MaxBackoff"/> while connecting fails.
/// </para>
/// </summary>
internal sealed class RedisCommandConnection : IDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private const int MaxReplyBytes = 64 * 1024 * 1024;

    private readonly EndPoint _endPoint;
    private readonly string? _user;
    private readonly string? _password;
    private readonly string _clientName;
    private readonly int? _database;
    private readonly TimeSpan _timeout;
    private readonly ILogger _logger;

    private readonly Lock _lock = new();
    private readonly Queue<Pending> _pending = new();   // in the order the commands were written
    private Socket? _socket;   // connected; null while down
    private volatile bool _disposed;
    private readonly Timer _watchdog;
    private byte[] _buffer = new byte[16 * 1024];
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RedisCommandConnection(EndPoint endPoint, string? user, string? password, string clientName, int? database, TimeSpan timeout,
        ILogger logger)
    {
        (_endPoint, _user, _password, _clientName, _database, _timeout, _logger) = (endPoint, user, password, clientName, database, timeout, logger);
        var period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 50, 1000));
        _watchdog = new Timer(static s => ((RedisCommandConnection)s!).DropIfStuck(), this, period, period);
    }

    /// <summary>Connected (tests; health).</summary>
    public bool IsConnected => Volatile.Read(ref _socket) is not null;

    /// <summary>Completes when the first connection is up (start-up waits for it, within the connect timeout).</summary>
    public Task Connected => _connected.Task;

    /// <summary>
    /// Whether this connection can serve <paramref name="configuration"/>: one endpoint, no TLS, no Sentinel, and a
    /// server that is not a Cluster node (<paramref name="serverType"/>: keys would need routing by slot).
    /// </summary>
    public static bool IsUsable(ConfigurationOptions configuration, RedisOptions options, ServerType? serverType) =>
        options.DirectCommands
        && serverType == ServerType.Standalone
        && configuration.EndPoints.Count == 1
        && configuration.EndPoints[0] is IPEndPoint or DnsEndPoint
        && !configuration.Ssl
        && configuration.ServiceName is null
        && configuration.Proxy == Proxy.None;

    public static RedisCommandConnection Start(ConfigurationOptions configuration, ILogger logger)
    {
        var connection = new RedisCommandConnection(configuration.EndPoints[0], configuration.User, configuration.Password,
            (configuration.ClientName ?? "chatserver") + "-commands", configuration.DefaultDatabase,
            TimeSpan.FromMilliseconds(configuration.AsyncTimeout), logger);
        new Thread(connection.Run) { IsBackground = true, Name = "Redis commands" }.Start();
        return connection;
    }

    /// <summary>
    /// Sends <paramref name="command"/> and completes with its reply (an error reply too: check
    /// <see cref="RespValue.IsError"/>). Down, or no reply within the timeout: <see cref="StoreUnavailableException"/>.
    /// </summary>
    public Task<RespValue> ExecuteAsync(RespCommand command)
    {
        var bytes = command.ToArray();
        var pending = new Pending();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_socket is not { } socket)
            {
                throw new StoreUnavailableException("The Redis command connection is down.");
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

        _watchdog.Dispose();
        RespSocket.Close(socket);
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
                socket = RespSocket.Connect(_endPoint, _timeout);
                try
                {
                    var setup = RespSocket.Setup(_user, _password, _clientName);
                    if (_database is > 0)
                    {
                        setup.Add(new RespCommand("SELECT").Add(_database.Value));
                    }

                    RespSocket.Exchange(socket, setup, _timeout);
                }
                catch
                {
                    RespSocket.Close(socket);
                    throw;
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or InvalidDataException)
            {
                if (failures++ == 0)
                {
                    RedisLog.ConnectionFailed(_logger, ConnectionType.Interactive, _endPoint.ToString(), ex);
                }

                Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, 100 * Math.Pow(2, Math.Min(failures, 16) - 1))));
                continue;
            }

            failures = 0;
            lock (_lock)
            {
                if (_disposed)
                {
                    RespSocket.Close(socket);
                    return;
                }

                _socket = socket;
            }

            _connected.TrySetResult();
            if (everConnected)
            {
                RedisLog.ConnectionRestored(_logger, ConnectionType.Interactive, _endPoint.ToString());
            }

            everConnected = true;
            try
            {
                ReceiveReplies(socket);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or InvalidDataException)
            {
                if (!_disposed)
                {
                    RedisLog.ConnectionFailed(_logger, ConnectionType.Interactive, _endPoint.ToString(), ex);
                }
            }

            Drop(socket);
        }
    }

    private void ReceiveReplies(Socket socket)
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
                else if (_buffer.Length >= MaxReplyBytes)
                {
                    throw new InvalidDataException($"Redis sent a reply larger than {MaxReplyBytes} bytes.");
                }
                else
                {
                    Array.Resize(ref _buffer, _buffer.Length * 2);
                }
            }

            var received = socket.Receive(_buffer, end, _buffer.Length - end, SocketFlags.None);
            if (received == 0)
            {
                throw new IOException("Redis closed the command connection.");
            }

            end += received;
            while (RespValue.TryRead(_buffer.AsSpan(start, end - start), out var reply, out var consumed))
            {
                start += consumed;
                Pending? pending;
                lock (_lock)
                {
                    _pending.TryDequeue(out pending);
                }

                if (pending is null)
                {
                    throw new InvalidDataException("Redis sent a reply to no command.");
                }

                pending.Complete(reply!);   // the caller's continuation runs here
            }

            if (start == end)
            {
                start = end = 0;
            }
        }
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

    private void Drop(Socket socket)
    {
        Pending[] waiting;
        lock (_lock)
        {
            if (_socket == socket)
            {
                _socket = null;
            }

            waiting = [.. _pending];
            _pending.Clear();
        }

        RespSocket.Close(socket);
        foreach (var pending in waiting)
        {
            pending.Fail(new StoreUnavailableException("The Redis command connection was lost before the reply."));
        }
    }

    /// <summary>A command waiting for its reply. Its task's continuations run on the receiving thread.</summary>
    private sealed class Pending : TaskCompletionSource<RespValue>
    {
        private readonly long _started = Environment.TickCount64;

        public TimeSpan Age => TimeSpan.FromMilliseconds(Environment.TickCount64 - _started);

        public void Complete(RespValue reply) => TrySetResult(reply);

        public void Fail(Exception exception) => TrySetException(exception);
    }
}
