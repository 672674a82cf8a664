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

    [LoggerMessage(104, LogLevel.Error, "A room channel's handler failed on the Redis pub/sub thread.")]
    public static partial void SubscriberHandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(105, LogLevel.Information, "Redis pub/sub: room channels on the server's own connections ({Count}).")]
    public static partial void UsingOwnSubscriber(ILogger logger, int count);

    [LoggerMessage(106, LogLevel.Information, "Redis commands: the per-message append script on the server's own connections (RESP3).")]
    public static partial void UsingOwnCommands(ILogger logger);

    [LoggerMessage(107, LogLevel.Information, "Deliveries from the server's own Redis connections are written one socket at a time: {Why}.")]
    public static partial void NoSendBatch(ILogger logger, string why);
}
