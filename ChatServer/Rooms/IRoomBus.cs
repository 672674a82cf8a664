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
    /// Starts delivering the room's entries to <paramref name="onEntry"/>, one at a time, in publication order (which is
    /// <c>seq</c> order for messages). Returns once delivery is active; dispose to stop.
    /// </summary>
    Task<IAsyncDisposable> SubscribeAsync(string room, Action<ReadOnlyMemory<byte>> onEntry);

    /// <summary>Numbers, stores, trims and publishes one message, atomically. <paramref name="messagePrefix"/>: see <c>MessageEncoding</c>.</summary>
    Task<(long Seq, string Epoch)> AppendAsync(string room, byte[] messagePrefix);

    /// <summary>Reads epoch, current seq and history in one atomic step, starting an epoch for a new room.</summary>
    Task<RoomHistory> ReadAsync(string room);

    /// <summary>Publishes an entry that is not stored (a notification).</summary>
    Task PublishAsync(string room, byte[] entry);
}
