using System.Collections.Concurrent;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Rooms;

/// <summary>
/// The embedded default when no Redis is configured: the same numbering, capped history and ordered delivery as
/// <see cref="RedisRoomBus"/>, for one instance. Each room's lock plays the part of the Lua script's atomicity;
/// subscribers run under it, so delivery follows <c>seq</c>. They only enqueue, so the lock is held briefly.
/// </summary>
internal sealed class InMemoryRoomBus(IOptions<ChatOptions> options) : IRoomBus
{
    private readonly int _historyLength = options.Value.HistoryLength;
    private readonly ConcurrentDictionary<string, RoomState> _rooms = new(StringComparer.Ordinal);

    public bool IsAvailable => true;

    public Task<IAsyncDisposable> SubscribeAsync(string room, Action<RoomEntry> onEntry)
    {
        var state = State(room);
        lock (state.Sync)
        {
            state.Subscribers = [.. state.Subscribers, onEntry];
        }

        return Task.FromResult<IAsyncDisposable>(new Subscription(state, onEntry));
    }

    public Task<(long Seq, string Epoch)> AppendAsync(string room, byte[] messagePrefix)
    {
        var state = State(room);
        lock (state.Sync)
        {
            var seq = ++state.Seq;
            var entry = RoomEntry.EncodeMessage(seq, state.Epoch, Protocol.MessageEncoding.Complete(messagePrefix, seq, state.Epoch));
            state.History.Enqueue(entry);
            while (state.History.Count > _historyLength)
            {
                state.History.Dequeue();
            }

            Publish(state, entry);
            return Task.FromResult((seq, state.Epoch));
        }
    }

    public Task<RoomHistory> ReadAsync(string room)
    {
        var state = State(room);
        lock (state.Sync)
        {
            var messages = new List<RoomEntry>(state.History.Count);
            foreach (var stored in state.History)
            {
                if (RoomEntry.TryParse(stored, out var entry))
                {
                    messages.Add(entry);
                }
            }

            return Task.FromResult(new RoomHistory(state.Epoch, state.Seq, messages));
        }
    }

    public Task PublishAsync(string room, byte[] entry)
    {
        var state = State(room);
        lock (state.Sync)
        {
            Publish(state, entry);
        }

        return Task.CompletedTask;
    }

    public Task<PresenceChange> JoinPresenceAsync(string room, string instance, string user, DateTimeOffset expiresAt)
    {
        var state = State(room);
        lock (state.Sync)
        {
            return Task.FromResult(state.Users.Add(user) ? new PresenceChange(true, []) : PresenceChange.None);
        }
    }

    public Task<PresenceChange> LeavePresenceAsync(string room, string instance, string user)
    {
        var state = State(room);
        lock (state.Sync)
        {
            return Task.FromResult(state.Users.Remove(user) ? new PresenceChange(true, []) : PresenceChange.None);
        }
    }

    public Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room)
    {
        var state = State(room);
        lock (state.Sync)
        {
            return Task.FromResult<(IReadOnlyList<string>, PresenceChange)>(([.. state.Users.Order(StringComparer.Ordinal)], PresenceChange.None));
        }
    }

    private static void Publish(RoomState state, byte[] stored)
    {
        if (!RoomEntry.TryParse(stored, out var entry))
        {
            return;
        }

        foreach (var subscriber in state.Subscribers)
        {
            subscriber(entry);
        }
    }

    private RoomState State(string room) => _rooms.GetOrAdd(room, static _ => new RoomState());

    private sealed class RoomState
    {
        public readonly Lock Sync = new();
        public readonly string Epoch = Epochs.New();
        public readonly Queue<byte[]> History = new();
        public long Seq;
        public Action<RoomEntry>[] Subscribers = [];
        public readonly HashSet<string> Users = new(StringComparer.Ordinal);   // one instance: no expiry needed
    }

    private sealed class Subscription(RoomState state, Action<RoomEntry> onEntry) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            lock (state.Sync)
            {
                state.Subscribers = [.. state.Subscribers.Where(s => s != onEntry)];
            }

            return ValueTask.CompletedTask;
        }
    }
}
