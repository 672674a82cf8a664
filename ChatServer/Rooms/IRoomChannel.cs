namespace ChatServer.Rooms;

/// <summary>
/// A room's channel between instances: raw entries (see <see cref="RoomEntry"/>), at most once. An entry may be lost
/// (Redis pub/sub while a subscription connection blips); the room feed repairs that from the log.
/// </summary>
internal interface IRoomChannel
{
    /// <summary>Raised when entries may have been lost to every subscription at once (a restored connection).</summary>
    event Action? Restored;

    /// <summary>
    /// Starts handing the room's entries to <paramref name="onEntry"/>, one at a time, in the order they were
    /// published; <paramref name="onEntry"/> must not block. Returns once delivery is active; dispose to stop.
    /// </summary>
    Task<IAsyncDisposable> SubscribeAsync(string room, Action<ReadOnlyMemory<byte>> onEntry, CancellationToken cancellationToken);

    /// <summary>Publishes an entry that is not stored (a notification).</summary>
    Task PublishAsync(string room, byte[] entry);
}
