using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChatServer.Protocol;

/// <summary>A client frame whose JSON shape is right (fields of the right JSON types); content rules come after.</summary>
internal abstract record ClientFrame;

/// <summary><c>{"type":"signin","user":…,"room":…}</c></summary>
internal sealed record SignInFrame(string? User, string? Room) : ClientFrame;

/// <summary><c>{"type":"sendMessage","text":…,"key":…}</c>; <see cref="Key"/> (protocol 1.2) makes a resend harmless.</summary>
internal sealed record SendMessageFrame(string? Text, string? Key = null) : ClientFrame;

/// <summary><c>{"type":"typing"}</c> (protocol 1.2): the connection's user is typing; the room's other members hear of it.</summary>
internal sealed record TypingFrame : ClientFrame;

/// <summary><c>{"type":"members"}</c> (extension): who is in the caller's room, across instances.</summary>
internal sealed record MembersFrame : ClientFrame;

/// <summary><c>{"type":"history","before":…,"epoch":…,"limit":…}</c>: older messages, oldest first, across epochs (protocol 1.2).</summary>
internal sealed record HistoryFrame(long? Before, int? Limit, string? Epoch = null) : ClientFrame;

/// <summary><c>{"type":"search","q":…,"limit":…,"before":…,"epoch":…}</c> (protocol 1.2): the room's messages matching words, newest first.</summary>
internal sealed record SearchFrame(string? Query, int? Limit, long? Before, string? Epoch) : ClientFrame;

/// <summary><c>{"type":"deleteMessage","seq":…,"epoch":…}</c> (protocol 1.2): the author deletes a message of the room.</summary>
internal sealed record DeleteMessageFrame(long Seq, string Epoch) : ClientFrame;

/// <summary><c>{"type":"updateSocketId","user":…,"room":…,"since":…,"epoch":…}</c></summary>
internal sealed record UpdateSocketIdFrame(string? User, string? Room, long? Since, string? Epoch) : ClientFrame;

/// <summary><c>{"type":"auth","token":…}</c> (protocol 1.1): a JWT proving who the connection speaks as.</summary>
internal sealed record AuthFrame(string? Token) : ClientFrame;

/// <summary>
/// The reply to every client frame. <see cref="Id"/> is always written: the frame's own id value, or <c>null</c>.
/// </summary>
internal sealed class AckFrame
{
    public string Type => FrameTypes.Ack;

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public JsonElement? Id { get; init; }

    public bool Ok { get; init; }
    public string? Error { get; init; }
    public string? Room { get; init; }
    public string? Epoch { get; init; }
    public long? Seq { get; init; }

    /// <summary>Stored <c>message</c> objects, oldest first, written as the very bytes Redis holds.</summary>
    public IReadOnlyList<RawJson>? Messages { get; init; }

    public bool? Recovered { get; init; }

    /// <summary>Protocol 1.2, <c>sendMessage</c> with a <c>key</c> already stored: nothing new was stored; <see cref="Seq"/> is the first one's.</summary>
    public bool? Duplicate { get; init; }

    /// <summary>Extension, <c>members</c>: each user in the room once, sorted.</summary>
    public IReadOnlyList<string>? Members { get; init; }

    /// <summary>Extension, <c>history</c>: whether history holds messages older than those returned.</summary>
    public bool? More { get; init; }

    /// <summary>Protocol 1.1, <c>auth</c>: the identity's name and when its token expires.</summary>
    public string? User { get; init; }

    public string? ExpiresAt { get; init; }

    public static AckFrame Rejected(JsonElement? id, string error) => new() { Id = id, Ok = false, Error = error };
}

/// <summary><c>{"type":"notification",…}</c>: a join or leave, never stored.</summary>
internal sealed class NotificationFrame
{
    public string Type => FrameTypes.Notification;
    public required string Room { get; init; }
    public required string User { get; init; }
    public required string Title { get; init; }
    public required string Description { get; init; }

    public static NotificationFrame Joined(string room, string user) =>
        new() { Room = room, User = user, Title = "Someone's here", Description = $"{user} just entered the room" };

    public static NotificationFrame Left(string room, string user) =>
        new() { Room = room, User = user, Title = "Someone just left", Description = $"{user} just left the room" };
}

/// <summary>
/// <c>{"type":"presence","room":…,"user":…,"present":true}</c> (extension): a user's first connection in the room
/// joined (on any instance), or its last one left or its instance stopped answering.
/// </summary>
internal sealed class PresenceFrame
{
    public string Type => FrameTypes.Presence;
    public required string Room { get; init; }
    public required string User { get; init; }
    public bool Present { get; init; }
}

/// <summary><c>{"type":"typing","room":…,"user":…}</c> (protocol 1.2): sent to the room's other members, never stored.</summary>
internal sealed class TypingNotice
{
    public string Type => FrameTypes.Typing;
    public required string Room { get; init; }
    public required string User { get; init; }
}

/// <summary><c>{"type":"deleted","room":…,"seq":…,"epoch":…}</c> (protocol 1.2): that message is now a tombstone.</summary>
internal sealed class DeletedFrame
{
    public string Type => FrameTypes.Deleted;
    public required string Room { get; init; }
    public long Seq { get; init; }
    public required string Epoch { get; init; }
}

/// <summary><c>{"type":"gap",…}</c>: messages <see cref="From"/>..<see cref="To"/> could not be delivered.</summary>
internal sealed class GapFrame
{
    public string Type => FrameTypes.Gap;
    public required string Room { get; init; }
    public bool Recovered { get; init; }
    public long From { get; init; }
    public long To { get; init; }

    /// <summary>The epoch <see cref="From"/>..<see cref="To"/> belong to, when not the room's current one (its history is gone).</summary>
    public string? Epoch { get; init; }
}

/// <summary>A JSON value kept as UTF-8 bytes and written verbatim (a stored message).</summary>
[JsonConverter(typeof(RawJsonConverter))]
internal readonly record struct RawJson(ReadOnlyMemory<byte> Utf8);

internal sealed class RawJsonConverter : JsonConverter<RawJson>
{
    public override RawJson Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("Stored messages are only ever written.");

    public override void Write(Utf8JsonWriter writer, RawJson value, JsonSerializerOptions options) =>
        writer.WriteRawValue(value.Utf8.Span, skipInputValidation: true);   // built by MessageEncoding, already valid
}
