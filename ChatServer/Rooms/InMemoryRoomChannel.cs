using System.Collections.Concurrent;

namespace ChatServer.Rooms;

/// <summary>Room channels within one process: a publish calls each subscriber in turn, which only enqueues.</summary>
internal sealed class InMemoryRoomChannel : IRoomChannel
{
    private readonly ConcurrentDictionary<string, Subscribers> _rooms = new(StringComparer.Ordinal);

    /// <summary>Never raised: nothing is lost between publisher and subscriber in one process.</summary>
    public event Action? Restored { add { } remove { } }

    public Task<IAsyncDisposable> SubscribeAsync(string room, Action<ReadOnlyMemory<byte>> onEntry, CancellationToken cancellationToken)
    {
        var subscribers = _rooms.GetOrAdd(room, static _ => new Subscribers());
        lock (subscribers.Sync)
        {
            subscribers.Handlers = [.. subscribers.Handlers, onEntry];
        }

        return Task.FromResult<IAsyncDisposable>(new Subscription(subscribers, onEntry));
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
    }

    private sealed class Subscription(Subscribers subscribers, Action<ReadOnlyMemory<byte>> onEntry) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            lock (subscribers.Sync)
            {
                subscribers.Handlers = [.. subscribers.Handlers.Where(h => h != onEntry)];
            }

            return ValueTask.CompletedTask;
        }
    }
}
