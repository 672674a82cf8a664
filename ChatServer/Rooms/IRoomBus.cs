namespace ChatServer.Rooms;

/// <summary>
/// Where rooms' messages are numbered, stored and fanned out between instances: Redis, or an in-process twin with the
/// same semantics for one instance. Store operations throw <see cref="StoreUnavailableException"/> when they cannot run.
/// </summary>
internal interface IRoomBus
{
    /// <summary>Whether messages can be stored and delivered now (<c>/readyz</c>).</summary>
    bool IsAvailable { get; }

    /// <summary>
    /// Starts delivering the room's entries to <paramref name="onEntry"/>, one at a time: messages in <c>seq</c> order
    /// with none skipped or repeated (a message that can no longer be delivered becomes a <see cref="RoomEntryKind.Gap"/>
    /// entry), and notifications as they come. Returns once delivery is active; dispose to stop.
    /// </summary>
    Task<IAsyncDisposable> SubscribeAsync(string room, Action<RoomEntry> onEntry);

    /// <summary>Numbers, stores, trims and publishes one message, atomically. <paramref name="messagePrefix"/>: see <c>MessageEncoding</c>.</summary>
    Task<(long Seq, string Epoch)> AppendAsync(string room, byte[] messagePrefix);

    /// <summary>Reads epoch, current seq and history in one atomic step, starting an epoch for a new room.</summary>
    Task<RoomHistory> ReadAsync(string room);

    /// <summary>Publishes an entry that is not stored (a notification).</summary>
    Task PublishAsync(string room, byte[] entry);

    /// <summary>
    /// Records (or refreshes) that <paramref name="user"/> is in the room on instance <paramref name="instance"/>, until
    /// <paramref name="expiresAt"/>. Entries of instances that stopped refreshing are swept first.
    /// </summary>
    Task<PresenceChange> JoinPresenceAsync(string room, string instance, string user, DateTimeOffset expiresAt);

    /// <summary>Removes this instance's entry for <paramref name="user"/>.</summary>
    Task<PresenceChange> LeavePresenceAsync(string room, string instance, string user);

    /// <summary>Each user present in the room once, sorted (after sweeping expired entries, reported in <see cref="PresenceChange.Gone"/>).</summary>
    Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room);
}
