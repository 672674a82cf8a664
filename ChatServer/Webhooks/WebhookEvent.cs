using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChatServer.Webhooks;

/// <summary>
/// One webhook event, as POSTed (docs/API.md "Webhooks"): <c>id</c>, <c>type</c>, <c>at</c>, then the fields of its
/// type; absent fields are left out. Written once, when the first attempt is made, and sent unchanged on every retry.
/// </summary>
internal sealed class WebhookEvent
{
    public required string Id { get; init; }

    public required string Type { get; init; }

    /// <summary>When the event happened on this instance: ISO 8601 UTC with three fractional digits, as a message's <c>ts</c>.</summary>
    public required string At { get; init; }

    public string? Room { get; init; }

    public string? User { get; init; }

    public long? Seq { get; init; }

    public string? Epoch { get; init; }

    public string? Ts { get; init; }

    public string? Text { get; init; }

    public string? Key { get; init; }

    /// <summary><c>message.deleted</c>: <c>author</c> or <c>api</c>.</summary>
    public string? By { get; init; }
}

/// <summary>The event types of docs/API.md.</summary>
internal static class WebhookEventTypes
{
    public const string MessageCreated = "message.created";
    public const string MessageDeleted = "message.deleted";
    public const string UserJoined = "user.joined";
    public const string UserLeft = "user.left";
    public const string UserOffline = "user.offline";
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WebhookEvent))]
internal sealed partial class WebhookJsonContext : JsonSerializerContext
{
    /// <summary>
    /// Written like the chat's own frames (<c>ChatJsonContext.Wire</c>): text as the user typed it (<c>é</c>, not
    /// <c>\u00E9</c>), JSON-escaped only where JSON needs it; a receiver parses it, nothing renders it as HTML.
    /// </summary>
    public static WebhookJsonContext Body => field ??= new(new JsonSerializerOptions(Default.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>
/// Event ids: <c>evt_</c> and 26 Crockford base-32 characters of a version 7 UUID, whose first 48 bits are the Unix time
/// in milliseconds, so ids sort by when they were made (to the millisecond, across instances) like a ULID, and the
/// remaining 74 random bits keep them unique.
/// </summary>
internal static class WebhookIds
{
    private const string Crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    public static string New() => New(Guid.CreateVersion7());

    public static string New(Guid uuid)
    {
        Span<byte> bytes = stackalloc byte[16];
        uuid.TryWriteBytes(bytes, bigEndian: true, out _);
        var value = (UInt128)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes) << 64
            | System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        Span<char> id = stackalloc char[4 + 26];
        "evt_".CopyTo(id);
        for (var i = 29; i >= 4; i--)   // 26 digits of 5 bits: 130 bits, the top two always zero (as in a ULID)
        {
            id[i] = Crockford[(int)(value & 31)];
            value >>= 5;
        }

        return new string(id);
    }
}
