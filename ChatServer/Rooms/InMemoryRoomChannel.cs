using System.Collections.Concurrent;

namespace ChatServer.Rooms;

/// <summary>
/// Room channels within one process: a publish calls each subscriber in turn, which only enqueues. A room's entry goes
/// with its last subscriber, so rooms that were visited and left hold nothing.
/// </summary>
internal sealed class InMemoryRoomChannel : IRoomChannel
{
    private readonly ConcurrentDictionary<string, Subscribers> _rooms = new(StringComparer.Ordinal);

    /// <summary>Never raised: nothing is lost between publisher and subscriber in one process.</summary>
    public event Action? Restored { add { } remove { } }

    /// <summary>Rooms with at least one subscriber (tests).</summary>
    internal int RoomCount => _rooms.Count;

    public Task<IAsyncDisposable> SubscribeAsync(string room, Action<ReadOnlyMemory<byte>> onEntry, CancellationToken cancellationToken)
    {
        while (true)
        {
            var subscribers = _rooms.GetOrAdd(room, static _ => new Subscribers());
            lock (subscribers.Sync)
            {
                if (subscribers.Removed)
                {
                    continue;   // its last subscriber just left: use the room's new entry
                }

                subscribers.Handlers = [.. subscribers.Handlers, onEntry];
            }

            return Task.FromResult<IAsyncDisposable>(new Subscription(this, room, subscribers, onEntry));
        }
    }

    public Task PublishAsync(string room, byte[] entry)
    {
        Publish(room, entry);
        return Task.CompletedTask;
    }

    /// <summary>Hands <paramref name="entry"/> to every subscriber; the log calls it under its lock, so order is <c>seq</c> order.</summary>
    public void Publish(string room, byte[] entry)
    {
        if (!_rooms.TryGetValue(room, out var subscribers))
        {
            return;
        }

        lock (subscribers.Sync)   // one publish at a time per room: every subscriber sees one order
        {
            foreach (var handler in subscribers.Handlers)
            {
                handler(entry);
            }
        }
    }

    private sealed class Subscribers
    {
        public readonly Lock Sync = new();
        public Action<ReadOnlyMemory<byte>>[] Handlers = [];
        public bool Removed;   // under Sync: no longer in the map
    }

    private sealed class Subscription(InMemoryRoomChannel owner, string room, Subscribers subscribers, Action<ReadOnlyMemory<byte>> onEntry)
        : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            lock (subscribers.Sync)
            {
                subscribers.Handlers = [.. subscribers.Handlers.Where(h => h != onEntry)];
                if (subscribers.Handlers.Length == 0 && !subscribers.Removed)
                {
                    subscribers.Removed = true;
                    owner._rooms.TryRemove(KeyValuePair.Create(room, subscribers));
                }
            }

            return ValueTask.CompletedTask;
        }
    }
}
