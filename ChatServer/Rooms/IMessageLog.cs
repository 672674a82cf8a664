namespace ChatServer.Rooms;

/// <summary>
/// Where a room's messages are numbered and kept: the newest <c>HistoryLength</c> of them, with contiguous <c>seq</c>
/// values ending at the head, in one generation (<c>epoch</c>) until the store loses its data. Appending also announces
/// the entry on the room's channel, in the same atomic step, so channel order is <c>seq</c> order on every instance.
/// Every read is ranged (it costs what it returns) and returns the head with it, read in the same atomic step; a read
/// of a room that has no epoch yet starts one. Operations throw <see cref="StoreUnavailableException"/> when they cannot run.
/// <para>
/// A store can go backward (a failover to a replica that had not yet received the last writes): appends and the
/// feed's reads pass <c>seen</c>, the furthest this instance has seen of the room; when the store holds that epoch
/// but a lower head, it starts a new epoch (empty, <c>seq</c> from 1) in the same atomic step, so no (epoch, seq) the
/// instance has seen is handed out again.
/// </para>
/// </summary>
internal interface IMessageLog
{
    /// <summary>Whether messages can be stored now (<c>/readyz</c>).</summary>
    bool IsAvailable { get; }

    /// <summary>
    /// Numbers, stores, trims and publishes one message. <paramref name="openJson"/>: see <c>MessageEncoding</c>. With
    /// <paramref name="key"/>, a message whose key the room already holds (within <c>IdempotencyWindow</c>, same epoch)
    /// stores and publishes nothing and returns the first one's number, <see cref="Appended.Duplicate"/>: the check and
    /// the store are one atomic step.
    /// </summary>
    Task<Appended> AppendAsync(string room, byte[] openJson, LogMark? seen = null, MessageKey? key = null);

    /// <summary>The newest <paramref name="count"/> messages (0: the head alone).</summary>
    Task<LogSlice> ReadLatestAsync(string room, int count, CancellationToken cancellationToken, LogMark? seen = null);

    /// <summary>The newest <paramref name="count"/> messages with a <c>seq</c> below <paramref name="before"/>.</summary>
    Task<LogSlice> ReadBeforeAsync(string room, long before, int count, CancellationToken cancellationToken);

    /// <summary>The oldest <paramref name="count"/> messages with a <c>seq</c> above <paramref name="after"/>.</summary>
    Task<LogSlice> ReadAfterAsync(string room, long after, long count, CancellationToken cancellationToken, LogMark? seen = null);

    /// <summary>
    /// Replaces a stored message with its tombstone (PROTOCOL.md "Deleting messages") and announces
    /// <paramref name="announcement"/> (a notification entry) on the room's channel, in one atomic step, if the log
    /// still holds <paramref name="original"/> (same bytes) at its place. Returns false when it no longer does.
    /// </summary>
    Task<bool> ReplaceAsync(string room, RoomEntry original, byte[] tombstoneEntry, byte[] announcement);

    /// <summary>
    /// Every room the log holds, with its epoch and kept range, for the history database's reconciler and for
    /// erasures. Unlike the reads above it starts no epoch and renews no expiry: looking must not keep rooms alive.
    /// A part of the store that cannot be reached is skipped, unless <paramref name="complete"/> asks for every room:
    /// then it throws <see cref="StoreUnavailableException"/> (an erasure must not report done having missed a shard).
    /// </summary>
    IAsyncEnumerable<RoomSpan> RoomsAsync(CancellationToken cancellationToken, bool complete = false);

    /// <summary>Every message the log keeps of <paramref name="room"/>, oldest first; like <see cref="RoomsAsync"/>, only looks.</summary>
    Task<IReadOnlyList<RoomEntry>> PeekAsync(string room, CancellationToken cancellationToken);
}

/// <summary>A room's kept range in its current epoch (<see cref="First"/> &gt; <see cref="Head"/>: nothing kept).</summary>
internal readonly record struct RoomSpan(string Room, string Epoch, long First, long Head);

/// <summary>Where an append landed; <see cref="Duplicate"/>: its key was already stored, and this is that message's place.</summary>
internal readonly record struct Appended(long Seq, string Epoch, bool Duplicate = false);

/// <summary>
/// A client's idempotency key (protocol 1.2), scoped to the message's author: the same key from another user is
/// another message. <see cref="Id"/> is how logs record it (the key has no spaces, so it cannot run into the name).
/// </summary>
internal readonly record struct MessageKey(string User, string Key)
{
    public string Id => $"{Key} {User}";
}

/// <summary>
/// The furthest an instance has seen of a room's log: <see cref="Seq"/> in <see cref="Epoch"/>. A store that holds
/// that epoch with a lower head has gone backward (<see cref="IsAheadOf"/>) and must start a new epoch.
/// </summary>
internal sealed record LogMark(string Epoch, long Seq)
{
    public bool IsAheadOf(string epoch, long head) => string.Equals(Epoch, epoch, StringComparison.Ordinal) && Seq > head;
}

/// <summary>
/// A range of a room's log and where the log stands, read together: <see cref="Epoch"/>, the last <c>seq</c> handed out
/// (<see cref="Head"/>), the oldest one still kept (<see cref="First"/>; <c>Head + 1</c> when nothing is kept) and the
/// range's <see cref="Messages"/>, oldest first, contiguous.
/// </summary>
internal sealed record LogSlice(string Epoch, long Head, long First, IReadOnlyList<RoomEntry> Messages)
{
    /// <summary>The last <c>seq</c> this slice accounts for: its last message, or the head when it holds none.</summary>
    public long End => Messages.Count > 0 ? Messages[^1].Seq : Head;

    /// <summary>Whether the slice holds everything the log keeps, from <see cref="First"/> to <see cref="Head"/>.</summary>
    public bool IsWhole => Messages.Count == Head - First + 1 && (Messages.Count == 0 || Messages[0].Seq == First);

    /// <summary>The range arithmetic every log shares: which <c>seq</c> values a read returns, from where the log stands.</summary>
    public static (long From, long To) Range(LogRead read, long position, long count, long first, long head)
    {
        if (read == LogRead.After)
        {
            var from = Math.Max(first, position + 1);
            return (from, Math.Min(head, from + count - 1));
        }

        var to = read == LogRead.Before ? Math.Min(head, position - 1) : head;
        return (Math.Max(first, to - count + 1), to);
    }
}

internal enum LogRead
{
    Latest,
    Before,
    After,
}
