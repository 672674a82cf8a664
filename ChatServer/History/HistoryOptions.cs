namespace ChatServer.History;

/// <summary>
/// The history database (PostgreSQL): off unless <see cref="ConnectionString"/> is set. Bound from section
/// <c>History</c> (<c>History__ConnectionString=…</c>) and validated at start-up.
/// </summary>
public sealed class HistoryOptions
{
    public const string Section = "History";

    /// <summary>An Npgsql connection string; unset keeps history only in Redis (or in process), as before.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>How long messages are kept in the database; <see cref="TimeSpan.Zero"/> (the default) keeps them for good.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.Zero;

    /// <summary>Most messages one archive write carries.</summary>
    public int BatchSize { get; set; } = 1_000;

    /// <summary>
    /// How long the archive waits for more messages before it writes a batch that is not full: bigger batches for a
    /// little more lag. Zero writes what is there at once.
    /// </summary>
    public TimeSpan BatchDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Messages waiting for the database at most; beyond it new ones are left to the reconciler (counted).</summary>
    public int QueueCapacity { get; set; } = 100_000;

    /// <summary>
    /// How often one instance compares what Redis (or the in-process log) holds with the database and copies what it
    /// lacks: messages acknowledged by an instance that crashed before its batch, or dropped while the database was down.
    /// </summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often retention runs (one instance at a time), when <see cref="Retention"/> is set.</summary>
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Archive lag (age of the oldest message not yet in the database) past which a warning is logged.</summary>
    public TimeSpan LagWarning { get; set; } = TimeSpan.FromSeconds(10);

    public bool IsEnabled => !string.IsNullOrWhiteSpace(ConnectionString);
}
