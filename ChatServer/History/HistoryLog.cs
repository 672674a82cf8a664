namespace ChatServer.History;

internal static partial class HistoryLog
{
    [LoggerMessage(800, LogLevel.Information, "History database ready (schema version {Version}).")]
    public static partial void SchemaReady(ILogger logger, int version);

    [LoggerMessage(801, LogLevel.Warning, "History database unreachable at start; the chat runs and the archive will catch up once it answers.")]
    public static partial void SchemaFailed(ILogger logger, Exception exception);

    [LoggerMessage(802, LogLevel.Warning, "Archive write of {Count} messages failed; retrying in {DelayMs} ms.")]
    public static partial void WriteFailed(ILogger logger, int count, double delayMs, Exception exception);

    [LoggerMessage(803, LogLevel.Warning, "Archive lag {LagSeconds:F1} s ({Messages} messages waiting): the history database is behind.")]
    public static partial void LagHigh(ILogger logger, double lagSeconds, long messages);

    [LoggerMessage(804, LogLevel.Information, "Archive caught up ({Messages} messages waiting).")]
    public static partial void LagNormal(ILogger logger, long messages);

    [LoggerMessage(805, LogLevel.Warning, "Archive queue full ({Capacity} messages): message {Seq} of room {Room} left for the reconciler.")]
    public static partial void QueueFull(ILogger logger, int capacity, string room, long seq);

    [LoggerMessage(806, LogLevel.Information, "Reconciler copied {Messages} messages of {Rooms} rooms that the history database lacked.")]
    public static partial void Reconciled(ILogger logger, long messages, int rooms);

    [LoggerMessage(807, LogLevel.Warning, "Reconciler pass failed; next in {IntervalSeconds} s.")]
    public static partial void ReconcileFailed(ILogger logger, double intervalSeconds, Exception exception);

    [LoggerMessage(808, LogLevel.Information, "Retention removed {Messages} messages stored before {Cutoff:O}.")]
    public static partial void RetentionApplied(ILogger logger, long messages, DateTime cutoff);

    [LoggerMessage(809, LogLevel.Warning, "Retention pass failed.")]
    public static partial void RetentionFailed(ILogger logger, Exception exception);
}
