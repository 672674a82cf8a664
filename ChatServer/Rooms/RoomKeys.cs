using ChatServer.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ChatServer.Rooms;

/// <summary>
/// Every Redis key and channel name, built in one place. A room's names share the hash tag <c>{escaped room}</c>, so one
/// room lives in one Redis Cluster slot. Escaping <c>%</c>, <c>{</c> and <c>}</c> keeps the tag whole and makes the
/// mapping one-to-one: no room name can reach another room's keys. Channels are always literal, never patterns.
/// </summary>
internal sealed class RoomKeys(IOptions<RedisOptions> options)
{
    private readonly string _prefix = options.Value.KeyPrefix;

    /// <summary>Hash with <c>seq</c> (last number handed out) and <c>epoch</c> (history generation).</summary>
    public RedisKey Meta(string room) => $"{_prefix}{{{Escape(room)}}}:meta";

    /// <summary>List of stored entries, oldest first, capped at <c>HistoryLength</c>.</summary>
    public RedisKey History(string room) => $"{_prefix}{{{Escape(room)}}}:history";

    /// <summary>Sorted set of <c>"&lt;instance id&gt; &lt;user&gt;"</c>, scored by when that entry expires (Unix ms).</summary>
    public RedisKey Presence(string room) => $"{_prefix}{{{Escape(room)}}}:presence";

    /// <summary>Hash of user → how many instances have that user in the room.</summary>
    public RedisKey Users(string room) => $"{_prefix}{{{Escape(room)}}}:users";

    public RedisChannel Channel(string room) => RedisChannel.Literal($"{_prefix}{{{Escape(room)}}}:messages");

    internal static string Escape(string room) =>
        room.Replace("%", "%25", StringComparison.Ordinal)
            .Replace("{", "%7B", StringComparison.Ordinal)
            .Replace("}", "%7D", StringComparison.Ordinal);
}
