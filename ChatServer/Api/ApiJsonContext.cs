using System.Text.Json;
using System.Text.Json.Serialization;
using ChatServer.Protocol;

namespace ChatServer.Api;

/// <summary>The body of <c>POST /api/rooms/{room}/messages</c>: a message from <c>user</c>, checked by the protocol's own rules.</summary>
internal sealed class PostMessageRequest
{
    /// <summary>The author, as a <c>signin</c>'s <c>user</c>: trimmed, the protocol's limits.</summary>
    public required string User { get; init; }

    /// <summary>The message, as a <c>sendMessage</c>'s <c>text</c>.</summary>
    public required string Text { get; init; }

    /// <summary>Optional idempotency key, as a <c>sendMessage</c>'s <c>key</c>: a repeat with the same key stores nothing.</summary>
    public string? Key { get; init; }
}

/// <summary>Where a posted message landed; with <see cref="Duplicate"/>, the first post of that key.</summary>
internal sealed class PostedMessage
{
    public required string Room { get; init; }

    public long Seq { get; init; }

    public required string Epoch { get; init; }

    /// <summary>When it was stored; absent only for a duplicate whose first message is no longer kept anywhere.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Ts { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Duplicate { get; init; }
}

/// <summary>A <c>history</c> or <c>search</c> page: stored <c>message</c> objects, written as the very bytes the store holds.</summary>
internal sealed class MessagesPage
{
    public required string Room { get; init; }

    /// <summary>The room's current epoch.</summary>
    public required string Epoch { get; init; }

    public required IReadOnlyList<RawJson> Messages { get; init; }

    public bool More { get; init; }
}

/// <summary>How many messages an erasure turned into tombstones.</summary>
internal sealed class ErasedMessages
{
    public long Deleted { get; init; }
}

/// <summary>The server API's bodies, source-generated (Native AOT); also in the HTTP JSON options, for typed results and the OpenAPI document.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(PostMessageRequest))]
[JsonSerializable(typeof(PostedMessage))]
[JsonSerializable(typeof(MessagesPage))]
[JsonSerializable(typeof(ErasedMessages))]
[JsonSerializable(typeof(RoomMembers))]
[JsonSerializable(typeof(KickResult))]
[JsonSerializable(typeof(RoomBans))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;
