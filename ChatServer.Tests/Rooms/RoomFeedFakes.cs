using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using ChatServer.Protocol;
using ChatServer.Rooms;

namespace ChatServer.Tests.Rooms;

/// <summary>
/// A log for one room that the test drives: it numbers and keeps entries like the real ones (contiguous seqs, the
/// newest <see cref="HistoryLength"/>), but never publishes; the test decides what the channel carries. Its reads can
/// be told to fail, and it records every read so a test can see what a read cost.
/// </summary>
internal sealed class FakeLog(int historyLength) : IMessageLog
{
    private readonly List<RoomEntry> _kept = [];

    public int HistoryLength { get; } = historyLength;

    public string Epoch { get; private set; } = "epoch1";

    public long Head { get; private set; }

    /// <summary>How many of the next reads throw <see cref="StoreUnavailableException"/>.</summary>
    public int FailNextReads { get; set; }

    /// <summary>Every read: (kind, position, count, messages returned).</summary>
    public List<(LogRead Read, long Position, long Count, int Returned)> Reads { get; } = [];

    public bool IsAvailable => true;

    /// <summary>Stores the next message and returns its entry, as the channel would carry it.</summary>
    public byte[] Append()
    {
        Head++;
        var stored = RoomEntry.EncodeMessage(MessageEncoding.WritePrefix("r", "u", $"t{Head}", DateTimeOffset.UnixEpoch), Head, Epoch);
        _ = RoomEntry.TryParse(stored, out var entry);
        _kept.Add(entry);
        if (_kept.Count > HistoryLength)
        {
            _kept.RemoveAt(0);
        }

        return stored;
    }

    public byte[][] Append(int count) => [.. Enumerable.Range(0, count).Select(_ => Append())];

    /// <summary>The store lost its data: a new epoch, an empty log.</summary>
    public void Restart(string epoch)
    {
        (Epoch, Head) = (epoch, 0);
        _kept.Clear();
    }

    /// <summary>The store went backward (a failover lost its tail): the newest <paramref name="count"/> entries are gone, same epoch.</summary>
    public void LoseTail(int count)
    {
        Head -= count;
        _kept.RemoveRange(_kept.Count - count, count);
    }

    public Task<Appended> AppendAsync(string room, byte[] openJson, LogMark? seen = null, MessageKey? key = null) => throw new NotSupportedException();

    public Task<bool> ReplaceAsync(string room, RoomEntry original, byte[] tombstoneEntry, byte[] announcement) => throw new NotSupportedException();

    public IAsyncEnumerable<RoomSpan> RoomsAsync(CancellationToken cancellationToken, bool complete = false) => throw new NotSupportedException();

    public Task<IReadOnlyList<RoomEntry>> PeekAsync(string room, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<LogSlice> ReadLatestAsync(string room, int count, CancellationToken cancellationToken, LogMark? seen = null) =>
        Read(LogRead.Latest, 0, count, seen);

    public Task<LogSlice> ReadBeforeAsync(string room, long before, int count, CancellationToken cancellationToken) => Read(LogRead.Before, before, count);

    public Task<LogSlice> ReadAfterAsync(string room, long after, long count, CancellationToken cancellationToken, LogMark? seen = null) =>
        Read(LogRead.After, after, count, seen);

    private Task<LogSlice> Read(LogRead read, long position, long count, LogMark? seen = null)
    {
        if (FailNextReads > 0)
        {
            FailNextReads--;
            Reads.Add((read, position, count, -1));
            return Task.FromException<LogSlice>(new StoreUnavailableException("fake: the read failed"));
        }

        if (seen is not null && seen.IsAheadOf(Epoch, Head))
        {
            Restart($"{Epoch}+");   // the failover guard, as the real logs have it
        }

        var first = Head - _kept.Count + 1;
        var (from, to) = LogSlice.Range(read, position, count, first, Head);
        RoomEntry[] messages = [.. _kept.Where(e => e.Seq >= from && e.Seq <= to)];
        Reads.Add((read, position, count, messages.Length));
        return Task.FromResult(new LogSlice(Epoch, Head, first, messages));
    }
}

/// <summary>A channel the test plays by hand: it hands over what the test says, in the test's order, as often as it says.</summary>
internal sealed class FakeChannel : IRoomChannel
{
    private Action<ReadOnlyMemory<byte>>? _subscriber;

    public event Action? Restored;

    public Task<IAsyncDisposable> SubscribeAsync(string room, Action<ReadOnlyMemory<byte>> onEntry, CancellationToken cancellationToken)
    {
        _subscriber = onEntry;
        return Task.FromResult<IAsyncDisposable>(new Unsubscribe(this));
    }

    public Task PublishAsync(string room, byte[] entry)
    {
        Carry(entry);
        return Task.CompletedTask;
    }

    public void Carry(params byte[][] entries)
    {
        foreach (var entry in entries)
        {
            _subscriber?.Invoke(entry);
        }
    }

    public void RaiseRestored() => Restored?.Invoke();

    private sealed class Unsubscribe(FakeChannel channel) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            channel._subscriber = null;
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A member's socket, reduced to what it received: <c>m3</c> for message seq 3 (<c>m3@e</c> outside epoch1), <c>gap2-3</c>, acks as sent.</summary>
internal sealed class FakeSink(string id) : IFrameSink
{
    public void Remove(string reason) => throw new NotSupportedException();

    private readonly Channel<string> _frames = Channel.CreateUnbounded<string>();

    public string Id { get; } = id;

    public bool TryEnqueue(ReadOnlyMemory<byte> frame)
    {
        var text = Encoding.UTF8.GetString(frame.Span);
        if (text.StartsWith('{'))
        {
            using var json = JsonDocument.Parse(frame);
            var root = json.RootElement;
            text = root.GetProperty("type").GetString() switch
            {
                "message" when root.GetProperty("epoch").GetString() is "epoch1" => $"m{root.GetProperty("seq").GetInt64()}",
                "message" => $"m{root.GetProperty("seq").GetInt64()}@{root.GetProperty("epoch").GetString()}",
                "gap" => $"gap{root.GetProperty("from").GetInt64()}-{root.GetProperty("to").GetInt64()}",
                var other => other!,
            };
        }

        return _frames.Writer.TryWrite(text);
    }


    /// <summary>What arrived so far, without waiting.</summary>
    public List<string> Received()
    {
        List<string> received = [];
        while (_frames.Reader.TryRead(out var frame))
        {
            received.Add(frame);
        }

        return received;
    }

    /// <summary>The next <paramref name="count"/> frames, waiting for them (the test's CancelAfter bounds the wait).</summary>
    public async Task<List<string>> NextAsync(int count, CancellationToken cancellationToken)
    {
        List<string> received = [];
        while (received.Count < count)
        {
            received.Add(await _frames.Reader.ReadAsync(cancellationToken));
        }

        return received;
    }
}

/// <summary>A clock whose timers fire only when the test says so.</summary>
internal sealed class ManualTime : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(callback, state);
        lock (_timers)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    /// <summary>Fires every timer created so far, once.</summary>
    public void FireAll()
    {
        ManualTimer[] due;
        lock (_timers)
        {
            due = [.. _timers];
            _timers.Clear();
        }

        foreach (var timer in due)
        {
            timer.Fire();
        }
    }

    private sealed class ManualTimer(TimerCallback callback, object? state) : ITimer
    {
        private bool _disposed;

        public void Fire()
        {
            if (!_disposed)
            {
                callback(state);
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period) => !_disposed;

        public void Dispose() => _disposed = true;

        public ValueTask DisposeAsync()
        {
            _disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}

internal sealed class TestMeters : IMeterFactory
{
    public Meter Create(MeterOptions options) => new(options);

    public void Dispose()
    {
    }
}
