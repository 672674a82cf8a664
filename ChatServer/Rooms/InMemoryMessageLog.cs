using System.Collections.Concurrent;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Rooms;

/// <summary>
/// The embedded log when no Redis is configured: per room a ring of the newest <c>HistoryLength</c> entries, where
/// <c>seq</c> lives at slot <c>(seq - 1) % HistoryLength</c>. The room's lock plays the part of the Lua script's
/// atomicity; publishing under it keeps channel order equal to <c>seq</c> order. It never goes backward by itself, but
/// it honours the failover guard like the Redis log does (<see cref="IMessageLog"/>), so both behave the same.
/// </summary>
internal sealed class InMemoryMessageLog(InMemoryRoomChannel channel, IOptions<ChatOptions> options) : IMessageLog
{
    private readonly int _historyLength = options.Value.HistoryLength;
    private readonly ConcurrentDictionary<string, RoomLogState> _rooms = new(StringComparer.Ordinal);

    public bool IsAvailable => true;

    public Task<(long Seq, string Epoch)> AppendAsync(string room, byte[] openJson, LogMark? seen = null)
    {
        var state = State(room);
        lock (state.Sync)
        {
            state.RestartIfBehind(seen);
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
            channel.Publish(room, stored);
            return Task.FromResult((seq, state.Epoch));
        }
    }

    public Task<LogSlice> ReadLatestAsync(string room, int count, CancellationToken cancellationToken, LogMark? seen = null) =>
        Task.FromResult(Read(room, LogRead.Latest, 0, count, seen));

    public Task<LogSlice> ReadBeforeAsync(string room, long before, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(room, LogRead.Before, before, count));

    public Task<LogSlice> ReadAfterAsync(string room, long after, long count, CancellationToken cancellationToken, LogMark? seen = null) =>
        Task.FromResult(Read(room, LogRead.After, after, count, seen));

    private LogSlice Read(string room, LogRead read, long position, long count, LogMark? seen = null)
    {
        var state = State(room);
        lock (state.Sync)
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
        }
    }

    private RoomLogState State(string room) => _rooms.GetOrAdd(room, static _ => new RoomLogState());

    private sealed class RoomLogState
    {
        public readonly Lock Sync = new();
        public readonly List<RoomEntry> Ring = [];
        public string Epoch = Epochs.New();
        public long Head;

        /// <summary>The failover guard (under <see cref="Sync"/>): behind what an instance has seen, start a new epoch.</summary>
        public void RestartIfBehind(LogMark? seen)
        {
            if (seen is not null && seen.IsAheadOf(Epoch, Head))
            {
                (Epoch, Head) = (Epochs.New(), 0);
                Ring.Clear();
            }
        }
    }
}
