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
}
