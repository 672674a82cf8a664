using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Rooms;

/// <summary>
/// The embedded log when no Redis is configured: per room a ring of the newest <c>HistoryLength</c> entries, where
/// <c>seq</c> lives at slot <c>(seq - 1) % HistoryLength</c>. The room's lock plays the part of the Lua script's
/// atomicity; publishing under it keeps channel order equal to <c>seq</c> order. It never goes backward by itself, but
/// it honours the failover guard like the Redis log does (<see cref="IMessageLog"/>), so both behave the same.
/// Retention as on Redis: a room untouched (no append, no read) for <c>HistoryTtl</c> is dropped, and the next use
/// starts it over with a new epoch; and at most <c>MaxInProcessRooms</c> are kept, the least recently used dropped first.
/// </summary>
internal sealed class InMemoryMessageLog(InMemoryRoomChannel channel, IOptions<ChatOptions> options, TimeProvider time) : IMessageLog
{
    private readonly int _historyLength = options.Value.HistoryLength;
    private readonly TimeSpan _ttl = options.Value.HistoryTtl;
    private readonly int _maxRooms = options.Value.MaxInProcessRooms;
    private readonly TimeSpan _keyWindow = options.Value.IdempotencyWindow;
    private readonly int _keysPerRoom = options.Value.IdempotencyKeysPerRoom;
    private readonly ConcurrentDictionary<string, RoomLogState> _rooms = new(StringComparer.Ordinal);
    private readonly Lock _sweepSync = new();
    private long _lastSweep = time.GetTimestamp();

    public bool IsAvailable => true;

    /// <summary>Rooms held now (tests, benchmarks): at most <c>MaxInProcessRooms</c> once a sweep has run.</summary>
    internal int RoomCount => _rooms.Count;

    public Task<Appended> AppendAsync(string room, byte[] openJson, LogMark? seen = null, MessageKey? key = null) => Task.FromResult(WithState(room, state =>
    {
        state.RestartIfBehind(seen);
        var now = time.GetTimestamp();
        if (key is { } k && state.Keys.Find(k.Id, now, _keyWindow, time) is { } prior)
        {
            return new Appended(prior, state.Epoch, Duplicate: true);
        }

        var seq = state.Head + 1;
        var stored = RoomEntry.EncodeMessage(openJson, seq, state.Epoch);
        _ = RoomEntry.TryParse(stored, out var entry);
        var slot = (int)((seq - 1) % _historyLength);
        if (slot == state.Ring.Count)
        {
            state.Ring.Add(entry);
        }
        else
        {
            state.Ring[slot] = entry;
        }

        state.Head = seq;
        if (key is { } added)
        {
            state.Keys.Add(added.Id, seq, now, _keysPerRoom);
        }

        channel.Publish(room, stored);
        return new Appended(seq, state.Epoch);
    }));

    public Task<LogSlice> ReadLatestAsync(string room, int count, CancellationToken cancellationToken, LogMark? seen = null) =>
        Task.FromResult(Read(room, LogRead.Latest, 0, count, seen));

    public Task<LogSlice> ReadBeforeAsync(string room, long before, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(room, LogRead.Before, before, count));

    public Task<LogSlice> ReadAfterAsync(string room, long after, long count, CancellationToken cancellationToken, LogMark? seen = null) =>
        Task.FromResult(Read(room, LogRead.After, after, count, seen));

    public Task<bool> ReplaceAsync(string room, RoomEntry original, byte[] tombstoneEntry, byte[] announcement) => Task.FromResult(WithState(room, state =>
    {
        var first = state.Head - state.Ring.Count + 1;
        if (state.Epoch != original.Epoch || original.Seq < first || original.Seq > state.Head)
        {
            return false;
        }

        var slot = (int)((original.Seq - 1) % _historyLength);
        if (!state.Ring[slot].Json.Span.SequenceEqual(original.Json.Span) || !RoomEntry.TryParse(tombstoneEntry, out var tombstone))
        {
            return false;
        }

        state.Ring[slot] = tombstone;
        channel.Publish(room, announcement);
        return true;
    }));

    public async IAsyncEnumerable<RoomSpan> RoomsAsync([EnumeratorCancellation] CancellationToken cancellationToken, bool complete = false)
    {
        foreach (var (room, state) in _rooms)
        {
            cancellationToken.ThrowIfCancellationRequested();
            RoomSpan? span;
            lock (state.Sync)
            {
                span = state.Dropped ? null : new RoomSpan(room, state.Epoch, state.Head - state.Ring.Count + 1, state.Head);
            }

            if (span is { } kept)
            {
                yield return kept;
            }
        }

        await Task.CompletedTask;
    }

    public Task<IReadOnlyList<RoomEntry>> PeekAsync(string room, CancellationToken cancellationToken)
    {
        if (!_rooms.TryGetValue(room, out var state))
        {
            return Task.FromResult<IReadOnlyList<RoomEntry>>([]);
        }

        lock (state.Sync)
        {
            var first = state.Head - state.Ring.Count + 1;
            var messages = new List<RoomEntry>(state.Ring.Count);
            for (var seq = first; seq <= state.Head; seq++)
            {
                messages.Add(state.Ring[(int)((seq - 1) % _historyLength)]);
            }

            return Task.FromResult<IReadOnlyList<RoomEntry>>(messages);
        }
    }

    private LogSlice Read(string room, LogRead read, long position, long count, LogMark? seen = null) => WithState(room, state =>
    {
        state.RestartIfBehind(seen);
        var first = state.Head - state.Ring.Count + 1;
        var (from, to) = LogSlice.Range(read, position, count, first, state.Head);
        var messages = new List<RoomEntry>((int)Math.Max(0, to - from + 1));
        for (var seq = from; seq <= to; seq++)
        {
            messages.Add(state.Ring[(int)((seq - 1) % _historyLength)]);
        }

        return new LogSlice(state.Epoch, state.Head, first, messages);
    });

    /// <summary>
    /// Runs <paramref name="action"/> under the room's lock on its live state: one that expired is dropped here and a
    /// fresh one (new epoch) takes its place; one a sweep dropped meanwhile is looked up again. Marks the room used.
    /// </summary>
    private T WithState<T>(string room, Func<RoomLogState, T> action)
    {
        while (true)
        {
            var now = time.GetTimestamp();
            if (!_rooms.TryGetValue(room, out var state))
            {
                state = _rooms.GetOrAdd(room, static (_, at) => new RoomLogState(at), now);
                SweepIfDue(now);   // a new room is the only way the map grows
            }

            lock (state.Sync)
            {
                if (state.Dropped)
                {
                    continue;
                }

                if (IsExpired(state.LastUsed, now))
                {
                    Drop(room, state);
                    continue;
                }

                state.LastUsed = now;
                return action(state);
            }
        }
    }

    private bool IsExpired(long lastUsed, long now) => _ttl > TimeSpan.Zero && time.GetElapsedTime(lastUsed, now) >= _ttl;

    /// <summary>
    /// Drops expired rooms, and beyond <c>MaxInProcessRooms</c> the least recently used down to nine tenths of it (so a
    /// flood pays for one sweep per tenth of the cap): at most once per <c>min(HistoryTtl, 1 min)</c> unless over the cap.
    /// </summary>
    private void SweepIfDue(long now)
    {
        var interval = _ttl > TimeSpan.Zero && _ttl < TimeSpan.FromMinutes(1) ? _ttl : TimeSpan.FromMinutes(1);
        var due = _rooms.Count > _maxRooms || (_ttl > TimeSpan.Zero && time.GetElapsedTime(Interlocked.Read(ref _lastSweep), now) >= interval);
        if (!due || !_sweepSync.TryEnter())
        {
            return;
        }

        try
        {
            Interlocked.Exchange(ref _lastSweep, now);
            var kept = new List<(long LastUsed, string Room, RoomLogState State)>(_rooms.Count);
            foreach (var (room, state) in _rooms)
            {
                var lastUsed = Volatile.Read(ref state.LastUsed);
                if (IsExpired(lastUsed, now))
                {
                    DropIf(room, state, s => IsExpired(s.LastUsed, now));
                }
                else
                {
                    kept.Add((lastUsed, room, state));
                }
            }

            var excess = _rooms.Count - (_maxRooms - _maxRooms / 10);
            if (_rooms.Count > _maxRooms && excess > 0)
            {
                foreach (var (_, room, state) in kept.OrderBy(k => k.LastUsed).Take(excess))
                {
                    DropIf(room, state, static _ => true);
                }
            }
        }
        finally
        {
            _sweepSync.Exit();
        }
    }

    private void DropIf(string room, RoomLogState state, Func<RoomLogState, bool> condition)
    {
        lock (state.Sync)
        {
            if (!state.Dropped && condition(state))
            {
                Drop(room, state);
            }
        }
    }

    /// <summary>Under the room's lock: whoever holds this state now looks the room up again.</summary>
    private void Drop(string room, RoomLogState state)
    {
        state.Dropped = true;
        _rooms.TryRemove(KeyValuePair.Create(room, state));
    }

    private sealed class RoomLogState(long created)
    {
        public readonly Lock Sync = new();
        public readonly List<RoomEntry> Ring = [];
        public readonly RecentKeys Keys = new();
        public string Epoch = Epochs.New();
        public long Head;
        public long LastUsed = created;   // a TimeProvider timestamp; written under Sync
        public bool Dropped;              // under Sync

        /// <summary>The failover guard (under <see cref="Sync"/>): behind what an instance has seen, start a new epoch.</summary>
        public void RestartIfBehind(LogMark? seen)
        {
            if (seen is not null && seen.IsAheadOf(Epoch, Head))
            {
                (Epoch, Head) = (Epochs.New(), 0);
                Ring.Clear();
                Keys.Clear();   // their seqs belong to the old epoch
            }
        }
    }

    /// <summary>
    /// A room's recent message keys (under the room's lock), oldest first: what the Redis script keeps in a hash and a
    /// sorted set. Expired ones are forgotten as they are met; beyond the cap, the oldest first.
    /// </summary>
    private sealed class RecentKeys
    {
        private readonly Dictionary<string, (long Seq, long At)> _byId = new(StringComparer.Ordinal);
        private readonly Queue<(string Id, long At)> _order = new();

        public long? Find(string id, long now, TimeSpan window, TimeProvider time)
        {
            while (_order.TryPeek(out var oldest) && time.GetElapsedTime(oldest.At, now) >= window)
            {
                _order.Dequeue();
                _byId.Remove(oldest.Id);
            }

            return _byId.TryGetValue(id, out var found) ? found.Seq : null;
        }

        public void Add(string id, long seq, long now, int cap)
        {
            _byId[id] = (seq, now);
            _order.Enqueue((id, now));
            while (_order.Count > cap && _order.TryDequeue(out var oldest))
            {
                _byId.Remove(oldest.Id);
            }
        }

        public void Clear()
        {
            _byId.Clear();
            _order.Clear();
        }
    }
}
