using System.Text.Json;
using System.Threading.Channels;
using ChatServer.Hosting;
using ChatServer.Protocol;

namespace ChatServer.Rooms;

/// <summary>
/// One room on this instance: its local members and the one place where PROTOCOL.md's ordering rule is kept, for every
/// backend. Entries from the room's channel (at most once: lost, late or repeated) become, for every member, messages in
/// strictly increasing <c>seq</c> order with no duplicate and no gap: a message that skips ahead first has the missing
/// range read from the log; what the log no longer holds becomes one <c>gap</c> frame; a read that fails is retried
/// (on the next entry, or after <see cref="RoomFeedSettings.RetryDelay"/>) and reported as nothing until it succeeds.
/// Joins happen at a point of that sequence, so an ack and the live messages after it never overlap or leave a hole.
/// A new <c>epoch</c> (the log lost its data and started over) starts the count again at 1, after one <c>gap</c> frame
/// naming the old epoch's range, whose history is gone. The feed's position is also the failover guard's mark
/// (<see cref="Seen"/>): every read it makes, and every append from this instance, passes it, so a store that went
/// backward under the same epoch starts a new one rather than hand out a <c>seq</c> members have already had.
/// <para>
/// Everything that reads or changes that sequence runs on one pump, one item at a time: the channel's entries, joins,
/// catch-ups and retries; only the next message in order may be delivered by the channel's thread itself, while the
/// pump is idle with nothing queued (<see cref="OnEntry"/>: one turn, never both). Joins and leaves (which subscribe and
/// unsubscribe) also pass one at a time through a gate.
/// </para>
/// </summary>
internal sealed class RoomFeed : IAsyncDisposable
{
    private const int RetiredEpochsKept = 8;

    private readonly IMessageLog _log;
    private readonly IRoomChannel _channel;
    private readonly RoomFeedSettings _settings;
    private readonly ChatMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private IAsyncDisposable? _subscription;
    private volatile bool _retired;

    private readonly Lock _sync = new();
    private RoomMember[] _members = [];

    private readonly Channel<Work> _work = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = true });
    private readonly CancellationTokenSource _stopping = new();
    private Task _pump = Task.CompletedTask;

    // Who handles the sequence: the pump while it holds an item (and before it starts, and once it has stopped), or,
    // while the pump is idle and nothing waits, the channel's thread itself for the next message in order (OnEntry).
    private readonly Lock _turn = new();
    private bool _pumpBusy = true;   // guarded by _turn

    // The sequence, touched by whoever has the turn: the pump, or OnEntry for the next message (and StartAsync before
    // the pump runs).
    private string _epoch = "";
    private long _last;
    private long _delivered;
    private LogMark? _seen;   // (_epoch, _last) for other threads: written by the pump, read by appends
    private bool _retryScheduled;
    private readonly SortedDictionary<long, RoomEntry> _pending = [];
    private readonly Queue<string> _retiredEpochs = new();

    public RoomFeed(string name, IMessageLog log, IRoomChannel channel, RoomFeedSettings settings, ChatMetrics metrics,
        TimeProvider time, ILogger logger)
    {
        Name = name;
        (_log, _channel, _settings, _metrics, _time, _logger) = (log, channel, settings, metrics, time, logger);
    }

    public string Name { get; }

    public int Count => Volatile.Read(ref _members).Length;

    /// <summary>The members now (a snapshot).</summary>
    public IReadOnlyList<RoomMember> Members => Volatile.Read(ref _members);

    /// <summary>Its last member left: it no longer delivers, and the registry makes a fresh feed for the next joiner.</summary>
    public bool IsRetired => _retired;

    /// <summary>The furthest this instance has seen of the room's log (null before the first read).</summary>
    public LogMark? Seen => Volatile.Read(ref _seen);

    /// <summary>
    /// Adds <paramref name="member"/> (or, already a member, answers it again): reads what <paramref name="request"/>
    /// needs, brings the room up to that point, sends <paramref name="ack"/>'s frame, then live entries from there on.
    /// False when this feed was retired meanwhile (join a fresh one). A failure changes nothing.
    /// </summary>
    public async Task<bool> AddAsync(RoomMember member, JoinRequest request, Func<LogSlice, byte[]> ack, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_retired)
            {
                return false;
            }

            var isNew = !Volatile.Read(ref _members).Contains(member);
            try
            {
                if (_subscription is null)
                {
                    await StartAsync(cancellationToken);
                }

                await RunAsync(token => JoinCoreAsync(member, request, ack, token), cancellationToken);
                return true;
            }
            catch
            {
                if (isNew && Remove(member) == 0)
                {
                    await RetireAsync();
                }

                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Removes <paramref name="member"/>; delivery to it stops at once. The last one out retires the feed.</summary>
    public async Task RemoveAsync(RoomMember member)
    {
        member.MarkLeft();
        await _gate.WaitAsync(CancellationToken.None);   // a leave always completes
        try
        {
            if (Remove(member) == 0 && !_retired)
            {
                await RetireAsync();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Delivers what the log holds beyond the last delivered message (the channel may have lost some).</summary>
    public async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RunAsync(CatchUpCoreAsync, cancellationToken);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // retired meanwhile: nothing left to catch up
        }
    }

    /// <summary>Completes once everything handed to the feed so far has been handled (tests; shutdown).</summary>
    internal Task DrainAsync(CancellationToken cancellationToken) => RunAsync(static _ => Task.CompletedTask, cancellationToken);

    /// <summary>Stops delivery and unsubscribes (shutdown).</summary>
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            if (!_retired)
            {
                await RetireAsync();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Subscribes, then reads where the log stands: nothing up to there is this instance's to deliver.</summary>
    private async Task StartAsync(CancellationToken cancellationToken)
    {
        var subscription = await _channel.SubscribeAsync(Name, OnEntry, cancellationToken);
        try
        {
            var head = await _log.ReadLatestAsync(Name, 0, cancellationToken);
            (_epoch, _last) = (head.Epoch, head.Head);
            MarkSeen();
        }
        catch
        {
            await subscription.DisposeAsync();
            throw;
        }

        _subscription = subscription;
        _pump = PumpAsync();
        RoomLog.Subscribed(_logger, Name);
        _metrics.RoomSubscribed();
    }

    private async Task RetireAsync()
    {
        _retired = true;
        if (_subscription is not { } subscription)
        {
            return;
        }

        _subscription = null;
        await subscription.DisposeAsync();
        _work.Writer.TryComplete();
        await _stopping.CancelAsync();
        await _pump;
        _stopping.Dispose();
        RoomLog.Unsubscribed(_logger, Name);
        _metrics.RoomUnsubscribed();
    }

    /// <summary>
    /// The channel's handler: parse the header, then deliver it right here when it is the next message in order (or a
    /// notification) and the pump is idle with nothing waiting, else queue it for the pump. Never blocks.
    /// </summary>
    private void OnEntry(ReadOnlyMemory<byte> raw)
    {
        if (!RoomEntry.TryParse(raw, out var entry))
        {
            RoomLog.BadEntry(_logger, Name);
            return;
        }

        lock (_turn)
        {
            // The channel's entries come one at a time, in order: one queued makes every later one queue behind it
            // until the pump has handled them all.
            if (!_pumpBusy && !_work.Reader.TryPeek(out _) && TryHandleNow(entry))
            {
                return;
            }
        }

        _work.Writer.TryWrite(new Work(entry));
    }

    /// <summary>
    /// What <see cref="OnEntryAsync"/> does for an entry that needs no read, so a message costs no queue hop and no state
    /// machines on the way to its members; false leaves it to the pump. Called holding the turn.
    /// </summary>
    private bool TryHandleNow(in RoomEntry entry)
    {
        var isMessage = entry.Kind != RoomEntryKind.Notification;
        if (isMessage && !_retiredEpochs.Contains(entry.Epoch)
            && !(string.Equals(entry.Epoch, _epoch, StringComparison.Ordinal) && entry.Seq <= _last + 1 && _pending.Count == 0))
        {
            return false;   // a new epoch, or a message ahead of the next: the pump repairs
        }

        try
        {
            if (!isMessage)
            {
                Notify(entry);
            }
            else if (entry.Seq == _last + 1 && string.Equals(entry.Epoch, _epoch, StringComparison.Ordinal))
            {
                Deliver(entry);
            }

            // else a late copy from a generation the log has left behind, or one already delivered
        }
        catch (Exception ex)   // a bug must not stop the room
        {
            RoomLog.DeliveryFailed(_logger, Name, ex);
        }

        return true;
    }

    private async Task RunAsync(Func<CancellationToken, Task> operation, CancellationToken cancellationToken)
    {
        var item = new Operation(operation, cancellationToken);
        if (!_work.Writer.TryWrite(new Work(item)))
        {
            throw new OperationCanceledException("The room feed has stopped.");
        }

        await item.Done.Task.WaitAsync(cancellationToken);
    }

    private async Task PumpAsync()
    {
        var stopping = _stopping.Token;
        try
        {
            while (true)
            {
                if (!TakeNext(out var work))
                {
                    if (!await _work.Reader.WaitToReadAsync(stopping))
                    {
                        break;
                    }

                    continue;
                }

                try
                {
                    if (work.Operation is { } operation)
                    {
                        await operation.RunAsync();
                    }
                    else if (work.IsRetry)
                    {
                        _retryScheduled = false;
                        await AdvanceAsync();
                    }
                    else
                    {
                        await OnEntryAsync(work.Entry);
                    }
                }
                catch (Exception ex)   // a bug must not stop the room
                {
                    if (!stopping.IsCancellationRequested)
                    {
                        RoomLog.DeliveryFailed(_logger, Name, ex);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // retired
        }

        lock (_turn)
        {
            _pumpBusy = true;   // stopped: nothing is handled any more, on any thread
        }

        while (_work.Reader.TryRead(out var left))
        {
            left.Operation?.Done.TrySetCanceled();
        }
    }

    /// <summary>The pump's next item, taking the turn for it; none waiting: the turn is free (false).</summary>
    private bool TakeNext(out Work work)
    {
        lock (_turn)
        {
            _pumpBusy = _work.Reader.TryRead(out work);
            return _pumpBusy;
        }
    }

    private async Task OnEntryAsync(RoomEntry entry)
    {
        if (entry.Kind == RoomEntryKind.Notification)
        {
            Notify(entry);
            return;
        }

        if (_retiredEpochs.Contains(entry.Epoch))
        {
            return;   // a late copy from a generation the log has left behind
        }

        if (!string.Equals(entry.Epoch, _epoch, StringComparison.Ordinal))
        {
            SwitchEpoch(entry.Epoch);
        }

        if (entry.Seq > _last)
        {
            _pending[entry.Seq] = entry;
            await AdvanceAsync();
        }
    }

    /// <summary>Delivers pending messages in order, repairing what lies between; stops at a read that failed.</summary>
    private async Task AdvanceAsync()
    {
        while (_pending.Count > 0)
        {
            var (seq, entry) = _pending.First();
            if (seq <= _last)
            {
                _pending.Remove(seq);
            }
            else if (seq == _last + 1)
            {
                _pending.Remove(seq);
                Deliver(entry);
            }
            else if (!await RepairAsync(seq - 1))
            {
                return;   // the next entry, or the retry, tries again
            }
        }
    }

    /// <summary>Reads <c>_last + 1</c>..<paramref name="to"/> from the log; false when the read failed.</summary>
    private async Task<bool> RepairAsync(long to)
    {
        var from = _last + 1;
        RoomLog.GapDetected(_logger, Name, from, to);
        LogSlice slice;
        try
        {
            slice = await _log.ReadAfterAsync(Name, _last, to - _last, _stopping.Token, _seen);
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested)
        {
            RoomLog.RepairDeferred(_logger, Name, from, to, ex);
            ScheduleRetry();
            return false;
        }

        _metrics.GapRepaired();
        if (string.Equals(slice.Epoch, _epoch, StringComparison.Ordinal))
        {
            Apply(slice, to);
        }
        else
        {
            SwitchEpoch(slice.Epoch);   // the log started over: this generation's history is gone
        }

        return true;
    }

    private async Task JoinCoreAsync(RoomMember member, JoinRequest request, Func<LogSlice, byte[]> ack, CancellationToken cancellationToken)
    {
        var slice = await SyncAsync(await (request switch
        {
            ResumeJoin { Since: null } => _log.ReadAfterAsync(Name, _last, _settings.HistoryLength, cancellationToken, _seen),
            ResumeJoin { Since: { } since, Epoch: var epoch } when epoch is null || string.Equals(epoch, _epoch, StringComparison.Ordinal) =>
                _log.ReadAfterAsync(Name, Math.Min(since, _last), _settings.HistoryLength, cancellationToken, _seen),
            _ => _log.ReadLatestAsync(Name, _settings.HistoryLength, cancellationToken, _seen),   // sign-in, or another generation's client
        }), cancellationToken);
        if (request is ResumeJoin resume && resume.RestartsFrom(slice) && !slice.IsWhole)
        {
            slice = await SyncAsync(await _log.ReadLatestAsync(Name, _settings.HistoryLength, cancellationToken, _seen), cancellationToken);
        }

        member.Send(ack(slice));
        lock (_sync)
        {
            if (!_members.Contains(member))
            {
                _members = [.. _members, member];
            }
        }

        await AdvanceAsync();   // pending entries that the read made deliverable
    }

    private async Task CatchUpCoreAsync(CancellationToken cancellationToken)
    {
        var delivered = _delivered;
        try
        {
            await SyncAsync(await _log.ReadAfterAsync(Name, _last, _settings.HistoryLength, cancellationToken, _seen), cancellationToken);
        }
        catch (StoreUnavailableException ex)
        {
            RoomLog.CatchUpFailed(_logger, Name, ex);   // the next message, or the next restore, tries again
            return;
        }

        if (_delivered > delivered)
        {
            RoomLog.CaughtUp(_logger, Name, _delivered - delivered);
            _metrics.GapRepaired();
        }

        await AdvanceAsync();
    }

    /// <summary>Brings the sequence up to the end of <paramref name="slice"/>, a read that runs to the head.</summary>
    private async Task<LogSlice> SyncAsync(LogSlice slice, CancellationToken cancellationToken)
    {
        if (!string.Equals(slice.Epoch, _epoch, StringComparison.Ordinal))
        {
            SwitchEpoch(slice.Epoch);
            if (!slice.IsWhole)
            {
                return await SyncAsync(await _log.ReadLatestAsync(Name, _settings.HistoryLength, cancellationToken, _seen), cancellationToken);
            }
        }

        Apply(slice, slice.End);
        return slice;
    }

    /// <summary>Delivers <paramref name="slice"/>'s messages after <c>_last</c> up to <paramref name="to"/>; what it lacks was trimmed.</summary>
    private void Apply(LogSlice slice, long to)
    {
        foreach (var message in slice.Messages)
        {
            if (message.Seq <= _last)
            {
                continue;
            }

            if (message.Seq > to)
            {
                break;
            }

            if (message.Seq > _last + 1)
            {
                SendGap(_last + 1, message.Seq - 1);
            }

            Deliver(message);
        }

        if (_last < to)
        {
            SendGap(_last + 1, to);
        }
    }

    /// <summary>
    /// The log moved to a new generation. What is pending of the old one can no longer be read: it goes out in order,
    /// with gaps for what is missing, and late copies of the old generation are ignored from now on. Members that had
    /// messages of the old generation get one <c>gap</c> frame naming it: its history is gone (a failover lost its
    /// tail, or the store lost everything), so what they hold of it may be more than anyone will see again.
    /// </summary>
    private void SwitchEpoch(string epoch)
    {
        foreach (var (seq, entry) in _pending)
        {
            if (seq > _last + 1)
            {
                SendGap(_last + 1, seq - 1);
            }

            Deliver(entry);
        }

        _pending.Clear();
        if (_epoch.Length > 0 && _last > 0)
        {
            RoomLog.EpochEnded(_logger, Name, _epoch, _last, epoch);
            Broadcast(new GapFrame { Room = Name, Recovered = false, From = 1, To = _last, Epoch = _epoch });
        }

        if (_epoch.Length > 0)
        {
            _retiredEpochs.Enqueue(_epoch);
            if (_retiredEpochs.Count > RetiredEpochsKept)
            {
                _retiredEpochs.Dequeue();
            }
        }

        (_epoch, _last) = (epoch, 0);
        MarkSeen();
    }

    private void Notify(in RoomEntry notification)
    {
        foreach (var member in Volatile.Read(ref _members))
        {
            member.Deliver(notification);
        }
    }

    private void Deliver(RoomEntry message)
    {
        _metrics.MessageFannedOut(message.Json.Span);
        foreach (var member in Volatile.Read(ref _members))
        {
            member.Deliver(message);
        }

        (_last, _delivered) = (message.Seq, _delivered + 1);
        MarkSeen();
    }

    private void SendGap(long from, long to)
    {
        RoomLog.GapUnrecoverable(_logger, Name, from, to);
        Broadcast(new GapFrame { Room = Name, Recovered = false, From = from, To = to });
        _last = to;
        MarkSeen();
    }

    private void Broadcast(GapFrame gap)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(gap, ChatJsonContext.Wire.GapFrame);
        foreach (var member in Volatile.Read(ref _members))
        {
            member.Send(json);
        }
    }

    private void MarkSeen() => Volatile.Write(ref _seen, new LogMark(_epoch, _last));

    private void ScheduleRetry()
    {
        if (_retryScheduled)
        {
            return;
        }

        _retryScheduled = true;
        _ = RetryLaterAsync(_stopping.Token);

        async Task RetryLaterAsync(CancellationToken stopping)
        {
            try
            {
                await Task.Delay(_settings.RetryDelay, _time, stopping);
                _work.Writer.TryWrite(Work.Retry);
            }
            catch (OperationCanceledException)
            {
                // retired
            }
        }
    }

    private int Remove(RoomMember member)
    {
        lock (_sync)
        {
            _members = [.. _members.Where(m => m != member)];
            return _members.Length;
        }
    }

    /// <summary>One item for the pump: an entry from the channel, an operation, or a retry.</summary>
    private readonly record struct Work(RoomEntry Entry, Operation? Operation = null, bool IsRetry = false)
    {
        public Work(Operation operation) : this(default, operation) { }

        public static Work Retry { get; } = new(default, null, IsRetry: true);
    }

    private sealed class Operation(Func<CancellationToken, Task> run, CancellationToken cancellationToken)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task RunAsync()
        {
            if (cancellationToken.IsCancellationRequested)
            {
                Done.TrySetCanceled(cancellationToken);
                return;
            }

            try
            {
                await run(cancellationToken);
                Done.TrySetResult();
            }
            catch (Exception ex)
            {
                Done.TrySetException(ex);
            }
        }
    }
}

/// <summary>How much a join or catch-up reads (<c>HistoryLength</c>), and how soon a failed repair read is retried.</summary>
internal sealed record RoomFeedSettings(int HistoryLength, TimeSpan RetryDelay);
