using ChatServer.Protocol;
using ChatServer.Rooms;

namespace ChatServer.History;

/// <summary>A message (or a tombstone) on its way into the history database: its key, what is searched, and its JSON.</summary>
internal sealed record ArchivedMessage(string Room, string Epoch, long Seq, string User, DateTime StoredAt, string Body, string? Text, bool Deleted)
{
    /// <summary>From a stored entry of a room's log; <c>null</c> for anything that is not a readable message.</summary>
    public static ArchivedMessage? From(in RoomEntry entry)
    {
        if (entry.Kind != RoomEntryKind.Message || StoredMessage.TryRead(entry.Json.Span) is not { } message)
        {
            return null;
        }

        return new(message.Room, entry.Epoch, entry.Seq, message.User, message.StoredAt,
            System.Text.Encoding.UTF8.GetString(entry.Json.Span), message.Text, message.Deleted);
    }
}
