using System.Net.WebSockets;
using ChatServer.Auth;
using ChatServer.History;
using ChatServer.Hosting;
using ChatServer.Moderation;
using ChatServer.Rooms;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>
/// Makes the per-socket objects, which die with the socket, and runs them; counts open connections for the cap.
/// </summary>
internal sealed class ChatConnectionFactory(IOptions<ChatOptions> options, RoomRegistry registry, IMessageLog log, IRoomChannel channel,
    PresenceTracker presence, RoomHistory history, IBanStore bans, InstanceId instance, TimeProvider time, ChatMetrics metrics, IHostApplicationLifetime lifetime,
    FrameDispatcher dispatcher, ChatAuthenticator authenticator, WriteDelay writeDelay, ILoggerFactory loggers)
{
    private readonly string _instanceId = instance.Value;
    private readonly ILogger _connectionLogger = loggers.CreateLogger<ChatConnection>();
    private readonly ILogger _sessionLogger = loggers.CreateLogger<ChatSession>();
    private long _created;
    private int _open;

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
    /// Runs a connection on <paramref name="socket"/> (and the <paramref name="wire"/> under it, both owned by the
    /// connection) to its end as <paramref name="identity"/> (the upgrade's token, if any): its session's waits end
    /// when <paramref name="aborted"/> fires or the application stops, and a stopping application closes it with 1012.
    /// The caller has reserved a slot and releases it afterwards.
    /// </summary>
    public async Task RunAsync(WebSocket socket, CloseLastStream wire, AuthIdentity? identity, CancellationToken aborted)
    {
        var connection = new ChatConnection($"{_instanceId}-{Interlocked.Increment(ref _created)}", socket, wire, options.Value, writeDelay,
            metrics, _connectionLogger);
        var rateLimiter = new SendRateLimiter(time, options.Value.RateLimitPerSecond, options.Value.RateLimitBurst);
        using var session = new ChatSession(connection, rateLimiter, registry, log, channel, presence, history, bans, time, _sessionLogger, aborted,
            lifetime.ApplicationStopping);
        using var auth = session.Auth = authenticator.Attach(connection, identity);
        ConnectionLog.Opened(_connectionLogger, connection.Id);
        using var stopping = lifetime.ApplicationStopping.Register(() => connection.RequestClose(ChatConnection.ServiceRestart));
        try
        {
            await connection.RunAsync(session, dispatcher, aborted);
        }
        finally
        {
            await session.CloseAsync();
        }
    }
}
