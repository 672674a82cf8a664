namespace ChatServer.Rooms;

internal static partial class RoomLog
{
    [LoggerMessage(200, LogLevel.Error, "Room {Room}: delivering an entry failed.")]
    public static partial void DeliveryFailed(ILogger logger, string room, Exception exception);

    [LoggerMessage(201, LogLevel.Warning, "Room {Room}: unsubscribing failed.")]
    public static partial void UnsubscribeFailed(ILogger logger, string room, Exception exception);

    [LoggerMessage(202, LogLevel.Warning, "Room {Room}: an entry with an unreadable header was ignored.")]
    public static partial void BadEntry(ILogger logger, string room);

    [LoggerMessage(203, LogLevel.Debug, "Room {Room}: first local member; subscribed.")]
    public static partial void Subscribed(ILogger logger, string room);

    [LoggerMessage(204, LogLevel.Debug, "Room {Room}: last local member left; unsubscribed.")]
    public static partial void Unsubscribed(ILogger logger, string room);
}
