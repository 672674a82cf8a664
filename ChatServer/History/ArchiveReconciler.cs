using System.Diagnostics.Metrics;
using ChatServer.Hosting;
using ChatServer.Rooms;
using Microsoft.Extensions.Options;

namespace ChatServer.History;

/// <summary>
/// Closes the holes the archive's queue leaves (an instance that crashed between an ack and its batch, a queue that
/// overflowed while the database was down): every <c>History:ReconcileInterval</c>, one instance at a time compares
/// each room the log holds with the database (one counting query per few hundred rooms) and copies the rooms whose
/// kept range the database lacks part of. It only looks at the log: no room is kept alive by it. The same service
/// applies <c>History:Retention</c>, also one instance at a time, in short batches.
/// </summary>
internal sealed class ArchiveReconciler : BackgroundService
{
    private const long ReconcileLock = 7423110523;
    private const long RetentionLock = 7423110524;
    private const int RoomsPerQuery = 500;

    private readonly IMessageLog _log;
    private readonly HistoryDatabase _database;
    private readonly HistoryOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ArchiveReconciler> _logger;
    private readonly Counter<long> _reconciled;
    private DateTime _nextRetention = DateTime.MinValue;

    public ArchiveReconciler(IMessageLog log, HistoryDatabase database, IOptions<HistoryOptions> options, TimeProvider time,
        IMeterFactory meters, ILogger<ArchiveReconciler> logger)
    {
        (_log, _database, _options, _time, _logger) = (log, database, options.Value, time, logger);
        _reconciled = meters.Create(ChatMetrics.MeterName).CreateCounter<long>("chat.archive.reconciled", "{message}",
            "Messages the reconciler copied into the history database because it lacked them.");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await _database.EnsureSchemaAsync(stoppingToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            HistoryLog.SchemaFailed(_logger, ex);
        }

        using var timer = new PeriodicTimer(_options.ReconcileInterval, _time);
        do
        {
            try
            {
                await _database.RunAloneAsync(ReconcileLock, () => ReconcileAsync(stoppingToken), stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                HistoryLog.ReconcileFailed(_logger, _options.ReconcileInterval.TotalSeconds, ex);
            }

            await ApplyRetentionIfDueAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One pass over every room the log holds; returns how many messages it copied.</summary>
    internal async Task<long> ReconcileAsync(CancellationToken cancellationToken)
    {
        long copied = 0;
        var rooms = 0;
        var chunk = new List<RoomSpan>(RoomsPerQuery);
        await foreach (var span in _log.RoomsAsync(cancellationToken))
        {
            if (span.Head < span.First)
            {
                continue;   // nothing kept
            }

            chunk.Add(span);
            if (chunk.Count == RoomsPerQuery)
            {
                (copied, rooms) = Add((copied, rooms), await ReconcileChunkAsync(chunk, cancellationToken));
                chunk.Clear();
            }
        }

        (copied, rooms) = Add((copied, rooms), await ReconcileChunkAsync(chunk, cancellationToken));
        if (copied > 0)
        {
            _reconciled.Add(copied);
            HistoryLog.Reconciled(_logger, copied, rooms);
        }

        return copied;

        static (long, int) Add((long Copied, int Rooms) total, (long Copied, int Rooms) more) =>
            (total.Copied + more.Copied, total.Rooms + more.Rooms);
    }

    private async Task<(long Copied, int Rooms)> ReconcileChunkAsync(List<RoomSpan> chunk, CancellationToken cancellationToken)
    {
        if (chunk.Count == 0)
        {
            return (0, 0);
        }

        var archived = await _database.CountArchivedAsync(chunk, cancellationToken);
        long copied = 0;
        var rooms = 0;
        for (var i = 0; i < chunk.Count; i++)
        {
            if (archived[i] >= chunk[i].Head - chunk[i].First + 1)
            {
                continue;
            }

            var messages = (await _log.PeekAsync(chunk[i].Room, cancellationToken))
                .Select(entry => ArchivedMessage.From(entry))
                .OfType<ArchivedMessage>()
                .ToList();
            if (messages.Count > 0)
            {
                await _database.WriteAsync(messages, cancellationToken);   // what is already there stays as it is
                copied += chunk[i].Head - chunk[i].First + 1 - archived[i];
                rooms++;
            }
        }

        return (copied, rooms);
    }

    private async Task ApplyRetentionIfDueAsync(CancellationToken stoppingToken)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        if (_options.Retention <= TimeSpan.Zero || now < _nextRetention)
        {
            return;
        }

        _nextRetention = now + _options.RetentionInterval;
        try
        {
            await _database.RunAloneAsync(RetentionLock, async () =>
            {
                var cutoff = now - _options.Retention;
                var removed = await _database.DeleteOlderThanAsync(cutoff, batch: 5_000, stoppingToken);
                if (removed > 0)
                {
                    HistoryLog.RetentionApplied(_logger, removed, cutoff);
                }
            }, stoppingToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            HistoryLog.RetentionFailed(_logger, ex);
        }
    }
}
