using ChatServer.Protocol;
using ChatServer.Rooms;
using ChatServer.Webhooks;

namespace ChatServer.History;

/// <summary>
/// Deletes a message (PROTOCOL.md "Deleting messages"): its text and key are erased from every store that holds it,
/// its <c>seq</c> stays as a tombstone, and every member of the room on every instance gets <c>deleted</c>. In the log
/// the tombstone replaces the message and the announcement goes out in one atomic step; the database gets the
/// tombstone through the archive (which lets a tombstone win over the message, whichever comes first), or at once when
/// only the database still holds the message. One path for the author's <c>deleteMessage</c> and for moderators; a
/// message it deletes is a <c>message.deleted</c> webhook when webhooks are on.
/// </summary>
internal sealed class MessageDeleter(IMessageLog log, IRoomChannel channel, HistoryReader reader, HistoryDatabase? database = null,
    ArchiveWriter? archive = null, WebhookOutbox? webhooks = null)
{
    /// <summary>
    /// Deletes message <paramref name="seq"/> of <paramref name="epoch"/> in <paramref name="room"/>; with
    /// <paramref name="author"/>, only if that user sent it; <paramref name="by"/> says who asked (the webhook's
    /// <c>by</c>). Throws what the stores throw when they cannot answer.
    /// </summary>
    public async Task<DeleteOutcome> DeleteAsync(string room, string epoch, long seq, string? author, DeletedBy by, CancellationToken cancellationToken)
    {
        // A message trimmed from the log between the read and the replace is looked up again (now in the database).
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (await reader.FindAsync(room, epoch, seq, cancellationToken) is not { } found || StoredMessage.TryRead(found.Json) is not { } message)
            {
                return DeleteOutcome.NotFound;
            }

            if (message.Deleted)
            {
                return DeleteOutcome.AlreadyDeleted;
            }

            if (author is not null && !string.Equals(message.User, author, StringComparison.Ordinal))
            {
                return DeleteOutcome.NotAuthor;
            }

            var tombstone = Tombstone.Of(room, epoch, seq, message);
            if (found.Entry is { } entry)
            {
                if (!await log.ReplaceAsync(room, entry, tombstone.LogEntry, tombstone.Announcement))
                {
                    continue;
                }

                archive?.Add(tombstone.Archived);
                Deleted(room, seq, epoch, by);
                return DeleteOutcome.Deleted;
            }

            await HistoryReader.RunAsync(async () =>
            {
                await database!.WriteAsync([tombstone.Archived], cancellationToken);
                return true;
            });
            Deleted(room, seq, epoch, by);   // the tombstone is stored: the announcement below may still fail
            await channel.PublishAsync(room, tombstone.Announcement);
            return DeleteOutcome.Deleted;
        }

        return DeleteOutcome.NotFound;
    }

    private void Deleted(string room, long seq, string epoch, DeletedBy by) =>
        webhooks?.MessageDeleted(room, seq, epoch, by == DeletedBy.Api ? "api" : "author");
}

/// <summary>Who deleted a message: its author (<c>deleteMessage</c>) or the server API.</summary>
internal enum DeletedBy
{
    Author,
    Api,
}

internal enum DeleteOutcome
{
    Deleted,
    AlreadyDeleted,
    NotFound,
    NotAuthor,
}
