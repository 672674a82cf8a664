using System.Net.WebSockets;
using ChatServer.Hosting;
using ChatServer.Rooms;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>Makes the per-socket objects, which die with the socket; counts open connections for the cap.</summary>
internal sealed class ChatConnectionFactory(IOptions<ChatOptions> options, RoomRegistry registry, IMessageLog log, IRoomChannel channel,
    PresenceTracker presence, InstanceId instance, TimeProvider time, ChatMetrics metrics, IHostApplicationLifetime lifetime,
    ILoggerFactory loggers)
{
    private readonly string _instanceId = instance.Value;
    private readonly ILogger _connectionLogger = loggers.CreateLogger<ChatConnection>();
    private readonly ILogger _sessionLogger = loggers.CreateLogger<ChatSession>();
    private long _created;
    private int _open;

    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>Reserves a slot under <see cref="ChatOptions.MaxConnections"/>; release it with <see cref="Release"/>.</summary>
    public bool TryReserve()
    {
        if (Interlocked.Increment(ref _open) <= options.Value.MaxConnections)
        {
            metrics.ConnectionOpened();
            return true;
        }

        Interlocked.Decrement(ref _open);
        return false;
    }

    public void Release()
    {
        Interlocked.Decrement(ref _open);
        metrics.ConnectionClosed();
    }

    /// <summary>
    /// A session whose waits end when <paramref name="requestAborted"/> fires or the application stops. The connection
    /// takes ownership of <paramref name="socket"/> and the <paramref name="wire"/> under it.
    /// </summary>
    public ChatSession Create(WebSocket socket, CloseLastStream wire, CancellationToken requestAborted)
    {
        var id = $"{_instanceId}-{Interlocked.Increment(ref _created)}";
        var connection = new ChatConnection(id, socket, wire, options.Value, time, metrics, _connectionLogger);
        var rateLimiter = new SendRateLimiter(time, options.Value.RateLimitPerSecond, options.Value.RateLimitBurst);
        return new ChatSession(connection, rateLimiter, registry, log, channel, presence, time, _sessionLogger, requestAborted,
            lifetime.ApplicationStopping);
    }
}
