using System.Net.WebSockets;

namespace ChatServer.Connections;

internal static partial class ConnectionLog
{
    [LoggerMessage(300, LogLevel.Debug, "Connection {ConnectionId} opened.")]
    public static partial void Opened(ILogger logger, string connectionId);

    [LoggerMessage(301, LogLevel.Debug, "Connection {ConnectionId} closed ({CloseStatus}).")]
    public static partial void Closed(ILogger logger, string connectionId, WebSocketCloseStatus closeStatus);

    [LoggerMessage(302, LogLevel.Information, "Connection {ConnectionId}: outgoing queue full ({Capacity} frames); closing with 1008.")]
    public static partial void QueueFull(ILogger logger, string connectionId, int capacity);

    [LoggerMessage(303, LogLevel.Information, "Connection {ConnectionId}: frame over {MaxFrameBytes} bytes; closing with 1009.")]
    public static partial void FrameTooBig(ILogger logger, string connectionId, int maxFrameBytes);

    [LoggerMessage(304, LogLevel.Debug, "Connection {ConnectionId}: close handshake did not finish in time; aborted.")]
    public static partial void Aborted(ILogger logger, string connectionId);

    [LoggerMessage(305, LogLevel.Error, "Connection {ConnectionId}: handling a {FrameType} frame failed.")]
    public static partial void HandlerFailed(ILogger logger, string connectionId, string frameType, Exception exception);

    [LoggerMessage(306, LogLevel.Information, "Upgrade refused: Origin {Origin} is not allowed.")]
    public static partial void OriginRefused(ILogger logger, string origin);

    [LoggerMessage(307, LogLevel.Warning, "Upgrade refused: {Limit} open connections reached.")]
    public static partial void ConnectionLimitReached(ILogger logger, int limit);

    [LoggerMessage(308, LogLevel.Warning, "Room {Room}: publishing a notification failed.")]
    public static partial void NotificationFailed(ILogger logger, string room, Exception exception);

    [LoggerMessage(309, LogLevel.Debug, "Connection {ConnectionId}: {FrameType} from {User} in {Room}: {Text}")]
    public static partial void MessageText(ILogger logger, string connectionId, string frameType, string user, string room, string text);
}
