using System.Globalization;
using ChatServer.Protocol;
using ChatServer.Rooms;
using ChatServer.Webhooks;

namespace ChatServer.History;

/// <summary>
/// The one path that stores a message, for a client's <c>sendMessage</c> and for the server API alike: written once
/// (<see cref="MessageEncoding"/>), numbered, stored and published by the log in one step (a key already stored answers
/// the first message's place and stores nothing), then queued for the history database when there is one, and for the
/// <c>message.created</c> webhook when webhooks are on (a duplicate is neither).
/// </summary>
internal sealed class MessagePoster(IMessageLog log, RoomRegistry registry, TimeProvider time, ArchiveWriter? archive = null,
    WebhookOutbox? webhooks = null)
{
    /// <summary>
    /// Stores <paramref name="text"/> as <paramref name="user"/>'s in <paramref name="room"/>; throws
    /// <see cref="StoreUnavailableException"/>. <see cref="Posted.StoredAt"/> is the <c>ts</c> written into it (for a
    /// duplicate, the time of this attempt: the first message keeps its own).
    /// </summary>
    public async Task<Posted> PostAsync(string room, string user, string text, string? key)
    {
        var storedAt = time.GetUtcNow();
        var prefix = MessageEncoding.WritePrefix(room, user, text, storedAt, key);
        var seen = registry.Seen(room);   // the failover guard: never a seq this instance has already seen
        var appended = await log.AppendAsync(room, prefix, seen, key is null ? null : new MessageKey(user, key));
        if (!appended.Duplicate)
        {
            archive?.Add(room, prefix, appended.Seq, appended.Epoch);
            webhooks?.MessageCreated(room, user, appended.Seq, appended.Epoch,
                storedAt.UtcDateTime.ToString(MessageEncoding.TimestampFormat, CultureInfo.InvariantCulture), text, key);
        }

        return new Posted(appended.Seq, appended.Epoch, appended.Duplicate, storedAt.UtcDateTime);
    }
}

/// <summary>Where a post landed (<see cref="Appended"/>) and the <c>ts</c> it was written with.</summary>
internal readonly record struct Posted(long Seq, string Epoch, bool Duplicate, DateTime StoredAt);
