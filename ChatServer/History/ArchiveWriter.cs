using System.Diagnostics.Metrics;
using System.Threading.Channels;
using ChatServer.Hosting;
using ChatServer.Rooms;
using Microsoft.Extensions.Options;

namespace ChatServer.History;

/// <summary>
/// Copies every message this instance stored into the history database, behind the chat: an append only puts the
/// message's bytes in a bounded queue (no round trip, no wait), and this writes them in batches. A batch that fails is
/// retried with back-off until it is written, so a database outage only grows the queue; when the queue is full, new
/// messages are left for <see cref="ArchiveReconciler"/>, which copies from Redis what the database lacks. The lag (how
/// many messages wait, and for how long the oldest has) is a metric, and a log line when it passes
/// <c>History:LagWarning</c>.
/// </summary>
internal sealed class ArchiveWriter : BackgroundService
{
    private readonly HistoryDatabase _database;
    private readonly HistoryOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ArchiveWriter> _logger;
    private readonly Channel<Pending> _queue;
    private readonly Counter<long> _written;
    private readonly Counter<long> _dropped;
    private long _waiting;            // queued or being written
    private long _oldestInFlight;     // TimeProvider timestamp of the oldest message of the batch being written; 0: none
    private bool _lagReported;
    private int _fullReported;

    public ArchiveWriter(HistoryDatabase database, IOptions<HistoryOptions> options, TimeProvider time, IMeterFactory meters,
        ILogger<ArchiveWriter> logger)
    {
        (_database, _options, _time, _logger) = (database, options.Value, time, logger);
        _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,   // TryWrite then fails at once instead of dropping something queued
        });
        var meter = meters.Create(ChatMetrics.MeterName);
        _written = meter.CreateCounter<long>("chat.archive.written", "{message}", "Messages and tombstones written to the history database by this instance.");
        _dropped = meter.CreateCounter<long>("chat.archive.dropped", "{message}",
            "Messages not queued for the history database because its queue was full (the reconciler copies them from Redis).");
        meter.CreateObservableGauge("chat.archive.lag.messages", () => Interlocked.Read(ref _waiting), "{message}",
            "Messages this instance stored that are not yet in the history database.");
        meter.CreateObservableGauge("chat.archive.lag.seconds", () => LagSeconds(), "s",
            "How long the oldest message not yet in the history database has waited.");
    }

    /// <summary>Queues a message just stored (its open JSON as the log took it, and where it landed). Never blocks.</summary>
    public void Add(string room, byte[] openJson, long seq, string epoch) =>
        Queue(new Pending(room, openJson, seq, epoch, null, _time.GetTimestamp()));

    /// <summary>Queues a tombstone (PROTOCOL.md "Deleting messages"): it replaces the message, whichever is written first.</summary>
    public void Add(ArchivedMessage tombstone) =>
        Queue(new Pending(tombstone.Room, null, tombstone.Seq, tombstone.Epoch, tombstone, _time.GetTimestamp()));

    /// <summary>Seconds the oldest waiting message has waited; 0 when none waits.</summary>
    public double LagSeconds()
    {
        var oldest = Interlocked.Read(ref _oldestInFlight);
        if (oldest == 0 && _queue.Reader.TryPeek(out var next))
        {
            oldest = next.At;
        }

        return oldest == 0 ? 0 : _time.GetElapsedTime(oldest).TotalSeconds;
    }

    private void Queue(Pending pending)
    {
        if (_queue.Writer.TryWrite(pending))
        {
            Interlocked.Increment(ref _waiting);
            return;
        }

        _dropped.Add(1);
        if (Interlocked.Exchange(ref _fullReported, 1) == 0)
        {
            HistoryLog.QueueFull(_logger, _options.QueueCapacity, pending.Room, pending.Seq);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reader = _queue.Reader;
        var batch = new List<Pending>(_options.BatchSize);
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken))
            {
                if (_options.BatchDelay > TimeSpan.Zero && reader.CanCount && reader.Count < _options.BatchSize)
                {
                    await Task.Delay(_options.BatchDelay, _time, stoppingToken);   // let a batch fill
                }

                while (batch.Count < _options.BatchSize && reader.TryRead(out var pending))
                {
                    batch.Add(pending);
                }

                await WriteAsync(batch, stoppingToken);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            await FlushOnStopAsync(batch);
        }
    }

    /// <summary>
    /// A stopping instance (a deploy, a scale-in) writes what it still holds, once, for a few seconds at most; what it
    /// cannot write is left to the reconciler, since Redis still holds it.
    /// </summary>
    private async Task FlushOnStopAsync(List<Pending> inFlight)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            var batch = new List<Pending>(inFlight);
            while (true)
            {
                while (batch.Count < _options.BatchSize && _queue.Reader.TryRead(out var pending))
                {
                    batch.Add(pending);
                }

                if (batch.Count == 0)
                {
                    return;
                }

                var messages = ToMessages(batch);
                await _database.WriteAsync(messages, deadline.Token);
                _written.Add(messages.Count);
                Interlocked.Add(ref _waiting, -batch.Count);
                batch.Clear();
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            HistoryLog.WriteFailed(_logger, (int)Interlocked.Read(ref _waiting), 0, ex);
        }
    }

    /// <summary>Writes one batch, retrying with back-off and jitter until it is written or the instance stops.</summary>
    private async Task WriteAsync(List<Pending> batch, CancellationToken stoppingToken)
    {
        Interlocked.Exchange(ref _oldestInFlight, batch[0].At);
        var messages = ToMessages(batch);
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                await _database.WriteAsync(messages, stoppingToken);
                break;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                HistoryLog.WriteFailed(_logger, messages.Count, delay.TotalMilliseconds, ex);
                ReportLag();
                await Task.Delay(delay * (0.5 + Random.Shared.NextDouble()), _time, stoppingToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }

        _written.Add(messages.Count);
        Interlocked.Add(ref _waiting, -batch.Count);
        Interlocked.Exchange(ref _oldestInFlight, 0);
        Interlocked.Exchange(ref _fullReported, 0);
        ReportLag();
    }

    /// <summary>One row per (room, epoch, seq) in a batch, a tombstone winning over its message (one statement cannot update a row twice).</summary>
    private static List<ArchivedMessage> ToMessages(List<Pending> batch)
    {
        var byPosition = new Dictionary<(string, string, long), ArchivedMessage>(batch.Count);
        foreach (var pending in batch)
        {
            var message = pending.Ready;
            if (message is null && RoomEntry.TryParse(RoomEntry.EncodeMessage(pending.OpenJson, pending.Seq, pending.Epoch), out var entry))
            {
                message = ArchivedMessage.From(entry);
            }

            if (message is null)
            {
                continue;
            }

            var position = (message.Room, message.Epoch, message.Seq);
            if (!byPosition.TryGetValue(position, out var seen) || (message.Deleted && !seen.Deleted))
            {
                byPosition[position] = message;
            }
        }

        return [.. byPosition.Values];
    }

    private void ReportLag()
    {
        var lag = LagSeconds();
        if (!_lagReported && lag > _options.LagWarning.TotalSeconds)
        {
            _lagReported = true;
            HistoryLog.LagHigh(_logger, lag, Interlocked.Read(ref _waiting));
        }
        else if (_lagReported && lag <= _options.LagWarning.TotalSeconds)
        {
            _lagReported = false;
            HistoryLog.LagNormal(_logger, Interlocked.Read(ref _waiting));
        }
    }

    /// <summary>A message waiting: its open JSON and place (closed by the writer, off the chat's path), or a ready tombstone.</summary>
    private readonly record struct Pending(string Room, byte[]? OpenJson, long Seq, string Epoch, ArchivedMessage? Ready, long At);
}
