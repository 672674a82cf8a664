using System.Net.WebSockets;
using ChatServer.Auth;
using ChatServer.Hosting;
using ChatServer.Rooms;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>
/// Makes the per-socket objects, which die with the socket, and runs them; counts open connections for the cap. Both
/// transports end here: <see cref="DirectUpgrade"/> (a fresh TCP connection upgraded by us) and the <c>/ws</c> endpoint
/// (ASP.NET Core's WebSocket, for whatever reaches the HTTP pipeline).
/// </summary>
internal sealed class ChatConnectionFactory(IOptions<ChatOptions> options, RoomRegistry registry, IMessageLog log, IRoomChannel channel,
    PresenceTracker presence, InstanceId instance, TimeProvider time, ChatMetrics metrics, IHostApplicationLifetime lifetime,
    FrameDispatcher dispatcher, ChatAuthenticator authenticator, RawConnections rawConnections, ILoggerFactory loggers)
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

    /// <summary>A connection on ASP.NET Core's <paramref name="socket"/>; it owns the socket and the <paramref name="wire"/> under it.</summary>
    public ChatConnection CreateManaged(WebSocket socket, CloseLastStream wire) =>
        new ManagedChatConnection(NextId(), socket, wire, options.Value, time, metrics, _connectionLogger);

    /// <summary>A connection framed by us on Kestrel's <paramref name="transport"/>, once the 101 is written.</summary>
    public RawChatConnection CreateRaw(ConnectionContext transport, WireOutput output) =>
        new(NextId(), transport, output, options.Value, metrics, _connectionLogger);

    /// <summary>
    /// Runs <paramref name="connection"/> to its end as <paramref name="identity"/> (the upgrade's token, if any): its
    /// session's waits end when <paramref name="aborted"/> fires or the application stops. The caller has reserved a
    /// slot and releases it afterwards.
    /// </summary>
    public async Task RunAsync(ChatConnection connection, AuthIdentity? identity, CancellationToken aborted)
    {
        var rateLimiter = new SendRateLimiter(time, options.Value.RateLimitPerSecond, options.Value.RateLimitBurst);
        using var session = new ChatSession(connection, rateLimiter, registry, log, channel, presence, time, _sessionLogger, aborted,
            lifetime.ApplicationStopping);
        using var auth = session.Auth = authenticator.Attach(connection, identity);
        ConnectionLog.Opened(_connectionLogger, connection.Id);
        var raw = connection as RawChatConnection;
        if (raw is not null)
        {
            rawConnections.Add(raw);   // keep-alive and the shutdown close, for all raw sockets at once
        }

        // The stock socket gets its 1012 on shutdown from a registration of its own.
        using var stopping = raw is null
            ? lifetime.ApplicationStopping.Register(() => connection.RequestClose(ChatConnection.ServiceRestart))
            : default;
        try
        {
            await connection.RunAsync(session, dispatcher, aborted);
        }
        finally
        {
            if (raw is not null)
            {
                rawConnections.Remove(raw);
            }

            await session.CloseAsync();
        }
    }

    private string NextId() => $"{_instanceId}-{Interlocked.Increment(ref _created)}";
}
