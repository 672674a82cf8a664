using ChatServer.Protocol;
using ChatServer.Rooms;
using ChatServer.Webhooks;

namespace ChatServer.History;

/// <summary>
/// Erases every message of one user (the server API's <c>DELETE /api/users/{user}/messages</c>, for erasure requests):
/// each becomes a tombstone (<see cref="Tombstone"/>, the same bytes as <c>deleteMessage</c> writes) in every store.
/// First every room the log holds: each of the user's messages is replaced in one atomic step with its announcement
/// (members get <c>deleted</c>, as for any delete), a message that moved meanwhile goes through
/// <see cref="MessageDeleter"/>; the tombstones are then written to the history database at once (a tombstone wins
/// there over the message, whenever the message arrives). Then the database's own older messages of the user, in
/// batches; rooms with a live member hear of those too. Messages the user posts while the erasure runs may stay.
/// Repeating an erasure is harmless: it finds nothing more to do.
/// </summary>
internal sealed class MessageEraser(IMessageLog log, IRoomChannel channel, PresenceTracker presence, MessageDeleter deleter,
    HistoryDatabase? database = null, ArchiveWriter? archive = null, WebhookOutbox? webhooks = null)
{
    /// <summary>Tombstones written to the history database per statement, and messages read from it per batch.</summary>
    public const int BatchSize = 500;

    /// <summary>
    /// Erases <paramref name="user"/>'s messages. Throws <see cref="StoreUnavailableException"/> when the log cannot
    /// answer (what was erased so far stays erased); when only the database cannot, <see cref="Erasure.Complete"/> is false.
    /// </summary>
    public async Task<Erasure> EraseAsync(string user, CancellationToken cancellationToken)
    {
        long erased = 0;
        var written = new List<ArchivedMessage>(BatchSize);
        var databaseFailed = false;
        await foreach (var span in log.RoomsAsync(cancellationToken, complete: true))
        {
            foreach (var entry in await log.PeekAsync(span.Room, cancellationToken))
            {
                if (StoredMessage.TryRead(entry.Json.Span) is not { Deleted: false } message || !string.Equals(message.User, user, StringComparison.Ordinal))
                {
                    continue;
                }

                var tombstone = Tombstone.Of(span.Room, entry.Epoch, entry.Seq, message);
                if (await log.ReplaceAsync(span.Room, entry, tombstone.LogEntry, tombstone.Announcement))
                {
                    erased++;
                    written.Add(tombstone.Archived);
                    webhooks?.MessageDeleted(span.Room, entry.Seq, entry.Epoch, "api");
                }
                else if (await deleter.DeleteAsync(span.Room, entry.Epoch, entry.Seq, author: user, DeletedBy.Api, cancellationToken) == DeleteOutcome.Deleted)
                {
                    erased++;   // trimmed into the database meanwhile: the deleter found it there
                }

                if (written.Count == BatchSize)
                {
                    databaseFailed |= !await WriteAsync(written, databaseFailed, cancellationToken);
                }
            }
        }

        databaseFailed |= !await WriteAsync(written, databaseFailed, cancellationToken);
        if (database is null || databaseFailed)
        {
            return new Erasure(erased, Complete: !databaseFailed);
        }

        try
        {
            erased += await EraseArchivedAsync(user, cancellationToken);
        }
        catch (HistoryUnavailableException)
        {
            return new Erasure(erased, Complete: false);
        }

        return new Erasure(erased, Complete: true);
    }

    /// <summary>
    /// Writes the log's new tombstones to the database now, so the erasure is done when it answers. When the database
    /// does not answer, the archive writer gets them instead (it retries), and false says the database part is not done.
    /// </summary>
    private async Task<bool> WriteAsync(List<ArchivedMessage> tombstones, bool failedBefore, CancellationToken cancellationToken)
    {
        if (database is null || tombstones.Count == 0)
        {
            tombstones.Clear();
            return !failedBefore;
        }

        var ok = !failedBefore;
        if (ok)
        {
            try
            {
                await HistoryReader.RunAsync(async () =>
                {
                    await database.WriteAsync(tombstones, cancellationToken);
                    return true;
                });
            }
            catch (HistoryUnavailableException)
            {
                ok = false;
            }
        }

        if (!ok)
        {
            tombstones.ForEach(t => archive?.Add(t));
        }

        tombstones.Clear();
        return ok;
    }

    /// <summary>The user's messages only the database holds (older than the log keeps), in batches; returns how many.</summary>
    private async Task<long> EraseArchivedAsync(string user, CancellationToken cancellationToken)
    {
        long erased = 0;
        var live = new Dictionary<string, bool>(StringComparer.Ordinal);
        (string Room, string Epoch, long Seq)? after = null;
        while (true)
        {
            var rows = await HistoryReader.RunAsync(() => database!.UserMessagesAsync(user, after, BatchSize, cancellationToken));
            if (rows.Count == 0)
            {
                return erased;
            }

            var tombstones = new List<Tombstone>(rows.Count);
            foreach (var (room, row) in rows)
            {
                if (StoredMessage.TryRead(System.Text.Encoding.UTF8.GetBytes(row.Body)) is { } message)
                {
                    tombstones.Add(Tombstone.Of(room, row.Epoch, row.Seq, message));
                }
            }

            await HistoryReader.RunAsync(async () =>
            {
                await database!.WriteAsync([.. tombstones.Select(t => t.Archived)], cancellationToken);
                return true;
            });
            erased += tombstones.Count;
            foreach (var tombstone in tombstones)
            {
                webhooks?.MessageDeleted(tombstone.Room, tombstone.Archived.Seq, tombstone.Archived.Epoch, "api");
                if (!live.TryGetValue(tombstone.Room, out var hasMembers))
                {
                    live[tombstone.Room] = hasMembers = (await presence.MembersAsync(tombstone.Room)).Count > 0;
                }

                if (hasMembers)
                {
                    await channel.PublishAsync(tombstone.Room, tombstone.Announcement);
                }
            }

            var last = rows[^1];
            after = (last.Room, last.Row.Epoch, last.Row.Seq);
        }
    }
}

/// <summary>How many messages an erasure turned into tombstones; <see cref="Complete"/> false: the history database did not answer.</summary>
internal readonly record struct Erasure(long Deleted, bool Complete);
