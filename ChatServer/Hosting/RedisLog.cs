using StackExchange.Redis;

namespace ChatServer.Hosting;

internal static partial class RedisLog
{
    [LoggerMessage(100, LogLevel.Information, "Rooms: in-process bus with in-memory history (one instance only). Set REDISHOST or Redis__Configuration to run several instances as one chat.")]
    public static partial void UsingInProcessBus(ILogger logger);

    [LoggerMessage(101, LogLevel.Information, "Rooms: Redis at {Endpoints} (connected: {Connected}).")]
    public static partial void UsingRedis(ILogger logger, string endpoints, bool connected);

    [LoggerMessage(102, LogLevel.Warning, "Redis {ConnectionType} connection to {Endpoint} failed; retrying.")]
    public static partial void ConnectionFailed(ILogger logger, ConnectionType connectionType, string? endpoint, Exception? exception);

    [LoggerMessage(103, LogLevel.Information, "Redis {ConnectionType} connection to {Endpoint} restored.")]
    public static partial void ConnectionRestored(ILogger logger, ConnectionType connectionType, string? endpoint);
}
