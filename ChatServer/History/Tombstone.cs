using System.Text;
using System.Text.Json;
using ChatServer.Protocol;
using ChatServer.Rooms;

namespace ChatServer.History;

/// <summary>
/// What deleting one message writes (PROTOCOL.md "Deleting messages"), built in one place for every path that deletes
/// (the author's <c>deleteMessage</c>, a moderator's delete, an erasure): the tombstone's JSON
/// (<see cref="MessageEncoding.WriteTombstone"/>), its log entry, the <c>deleted</c> announcement for every member of
/// the room, and its row for the history database (which lets a tombstone win over the message).
/// </summary>
internal sealed class Tombstone
{
    private Tombstone(string room, string epoch, long seq, byte[] json, ArchivedMessage archived) =>
        (Room, Epoch, Seq, Json, Archived) = (room, epoch, seq, json, archived);

    public string Room { get; }

    public string Epoch { get; }

    public long Seq { get; }

    /// <summary>The tombstone's <c>message</c> JSON: who and when stay, text and key are gone.</summary>
    public byte[] Json { get; }

    /// <summary>The tombstone as the history database stores it.</summary>
    public ArchivedMessage Archived { get; }

    /// <summary>The tombstone as the room's log stores it, in the message's place.</summary>
    public byte[] LogEntry => RoomEntry.EncodeStored(Seq, Epoch, Json);

    /// <summary>The <c>deleted</c> frame as a notification entry for every member of the room, on every instance.</summary>
    public byte[] Announcement => RoomEntry.EncodeNotification(RoomEntry.EveryMember,
        JsonSerializer.SerializeToUtf8Bytes(new DeletedFrame { Room = Room, Seq = Seq, Epoch = Epoch }, ChatJsonContext.Wire.DeletedFrame));

    /// <summary>The tombstone of <paramref name="message"/>, message <paramref name="seq"/> of <paramref name="epoch"/> in <paramref name="room"/>.</summary>
    public static Tombstone Of(string room, string epoch, long seq, StoredMessage message)
    {
        var json = MessageEncoding.WriteTombstone(message);
        return new Tombstone(room, epoch, seq, json,
            new ArchivedMessage(room, epoch, seq, message.User, message.StoredAt, Encoding.UTF8.GetString(json), null, Deleted: true));
    }
}
