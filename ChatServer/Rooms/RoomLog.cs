namespace ChatServer.Rooms;

internal static partial class RoomLog
{
    [LoggerMessage(200, LogLevel.Error, "Room {Room}: delivering an entry failed.")]
    public static partial void DeliveryFailed(ILogger logger, string room, Exception exception);

    [LoggerMessage(201, LogLevel.Warning, "Room {Room}: unsubscribing failed.")]
    public static partial void UnsubscribeFailed(ILogger logger, string room, Exception exception);

    [LoggerMessage(202, LogLevel.Warning, "Room {Room}: an entry with an unreadable header was ignored.")]
    public static partial void BadEntry(ILogger logger, string room);

    [LoggerMessage(205, LogLevel.Warning, "Room {Room}: pub/sub skipped seq {From}..{To}; delivering them from history.")]
    public static partial void GapDetected(ILogger logger, string room, long from, long to);

    [LoggerMessage(210, LogLevel.Warning, "Room {Room}: the store moved from epoch {OldEpoch} (seen up to seq {Last}) to {Epoch}; its history is gone and clients get a gap frame.")]
    public static partial void EpochEnded(ILogger logger, string room, string oldEpoch, long last, string epoch);

    [LoggerMessage(206, LogLevel.Warning, "Room {Room}: seq {From}..{To} are no longer in history; clients get a gap frame.")]
    public static partial void GapUnrecoverable(ILogger logger, string room, long from, long to);

    [LoggerMessage(207, LogLevel.Warning, "Room {Room}: catching up from history failed.")]
    public static partial void CatchUpFailed(ILogger logger, string room, Exception exception);

    [LoggerMessage(208, LogLevel.Information, "Room {Room}: caught up {Count} message(s) from history after a reconnect.")]
    public static partial void CaughtUp(ILogger logger, string room, long count);

    [LoggerMessage(209, LogLevel.Warning, "Room {Room}: reading seq {From}..{To} from history failed; retrying before anything later is delivered.")]
    public static partial void RepairDeferred(ILogger logger, string room, long from, long to, Exception exception);

    [LoggerMessage(203, LogLevel.Debug, "Room {Room}: first local member; subscribed.")]
    public static partial void Subscribed(ILogger logger, string room);

    [LoggerMessage(204, LogLevel.Debug, "Room {Room}: last local member left; unsubscribed.")]
    public static partial void Unsubscribed(ILogger logger, string room);
}
