using ChatServer.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ChatServer.Rooms;

/// <summary>
/// Every Redis key and channel name, built in one place. A room's names share the hash tag <c>{escaped room}</c>, so one
/// room lives in one Redis Cluster slot. Escaping <c>%</c>, <c>{</c> and <c>}</c> keeps the tag whole and makes the
/// mapping one-to-one: no room name can reach another room's keys. Channels are always literal, never patterns; in
/// sharded mode the channel carries the same hash tag, so <c>SPUBLISH</c>/<c>SSUBSCRIBE</c> go to the room's own shard.
/// </summary>
internal sealed class RoomKeys(IOptions<RedisOptions> options)
{
    private readonly string _prefix = options.Value.KeyPrefix;
    private readonly bool _sharded = options.Value.PubSub == RedisPubSubMode.Sharded;

    /// <summary>Hash with <c>seq</c> (last number handed out) and <c>epoch</c> (history generation).</summary>
    public RedisKey Meta(string room) => $"{_prefix}{{{Escape(room)}}}:meta";

    /// <summary>List of stored entries, oldest first, capped at <c>HistoryLength</c>.</summary>
    public RedisKey History(string room) => $"{_prefix}{{{Escape(room)}}}:history";

    /// <summary>Hash of <c>"&lt;key&gt; &lt;user&gt;"</c> → <c>"&lt;seq&gt; &lt;epoch&gt;"</c>: the room's recent idempotency keys.</summary>
    public RedisKey MessageKeys(string room) => $"{_prefix}{{{Escape(room)}}}:keys";

    /// <summary>Sorted set of the same <c>"&lt;key&gt; &lt;user&gt;"</c>, scored by when each was stored (Unix ms): what to forget first.</summary>
    public RedisKey MessageKeyTimes(string room) => $"{_prefix}{{{Escape(room)}}}:keytimes";

    /// <summary>Hash of user → <c>"&lt;until ms, 0: until lifted&gt; &lt;reason&gt;"</c>: the room's bans (API.md).</summary>
    public RedisKey Bans(string room) => $"{_prefix}{{{Escape(room)}}}:bans";

    /// <summary>The channel every instance listens on for moderation commands (kicks, connection counts); one slot.</summary>
    public RedisChannel ControlCommands => _sharded ? RedisChannel.Sharded($"{_prefix}{{control}}:commands") : RedisChannel.Literal($"{_prefix}{{control}}:commands");

    /// <summary>Where the answers to one moderation command go, in the same slot as the commands.</summary>
    public RedisChannel ControlReplies(string id) =>
        _sharded ? RedisChannel.Sharded($"{_prefix}{{control}}:replies:{id}") : RedisChannel.Literal($"{_prefix}{{control}}:replies:{id}");

    /// <summary>Sorted set of <c>"&lt;instance id&gt; &lt;user&gt;"</c>, scored by when that entry expires (Unix ms).</summary>
    public RedisKey Presence(string room) => $"{_prefix}{{{Escape(room)}}}:presence";

    /// <summary>Hash of user → how many instances have that user in the room.</summary>
    public RedisKey Users(string room) => $"{_prefix}{{{Escape(room)}}}:users";

    /// <summary>
    /// The room's channel. Sharded channels are literal too, and the library sends <c>SPUBLISH</c>/<c>SSUBSCRIBE</c>
    /// for them, routed to the node owning the name's slot, which is the room's slot.
    /// </summary>
    public RedisChannel Channel(string room)
    {
        var name = $"{_prefix}{{{Escape(room)}}}:messages";
        return _sharded ? RedisChannel.Sharded(name) : RedisChannel.Literal(name);
    }

    /// <summary>The command the append script publishes with: it must match how <see cref="Channel"/> is subscribed.</summary>
    public string PublishCommand => _sharded ? "SPUBLISH" : "PUBLISH";

    /// <summary>A <c>SCAN</c> pattern matching every room's <see cref="Meta"/> key.</summary>
    public string MetaPattern => $"{_prefix}{{*}}:meta";

    /// <summary>The room a <see cref="Meta"/> key belongs to (every <c>%</c> in the tag starts an escape, so this inverts <see cref="Escape"/>).</summary>
    public string? RoomOfMeta(string key)
    {
        var start = _prefix.Length + 1;
        var end = key.Length - "}:meta".Length;
        return key.StartsWith(_prefix + "{", StringComparison.Ordinal) && key.EndsWith("}:meta", StringComparison.Ordinal) && end >= start
            ? Uri.UnescapeDataString(key[start..end])
            : null;
    }

    internal static string Escape(string room) =>
        room.Replace("%", "%25", StringComparison.Ordinal)
            .Replace("{", "%7B", StringComparison.Ordinal)
            .Replace("}", "%7D", StringComparison.Ordinal);
}
