using StackExchange.Redis;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Rooms;

/// <summary>
/// Presence on Redis: per room a sorted set of <c>"&lt;instance&gt; &lt;user&gt;"</c> scored by expiry and a hash of
/// user → instances holding it, kept by one script that sweeps expired entries first. Both keys expire a presence TTL
/// after their latest entry does (retention: no key lives forever), and vanish with their last entry.
/// </summary>
internal sealed class RedisPresenceStore(RedisConnection connection, RoomKeys keys, IOptions<ChatOptions> options, TimeProvider time)
    : IPresenceStore
{
    // KEYS: presence zset, users hash. ARGV: mode (join|leave|sweep), now (ms), expiry (ms), "<instance> <user>", user,
    // grace (ms; retention). Sweeps expired entries first; returns {changed, users gone by expiry, members (sweep
    // only)}. users counts instances per user, so a user is "present" while any instance holds it.
    private const string PresenceScript = """
        local gone = {}
        for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
          redis.call('ZREM', KEYS[1], entry)
          local user = string.sub(entry, string.find(entry, ' ', 1, true) + 1)
          if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
            redis.call('HDEL', KEYS[2], user)
            table.insert(gone, user)
          end
        end
        local changed = 0
        if ARGV[1] == 'join' then
          if redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[5], 1) == 1 then
            changed = 1
          end
        elseif ARGV[1] == 'leave' then
          if redis.call('ZREM', KEYS[1], ARGV[4]) == 1 and redis.call('HINCRBY', KEYS[2], ARGV[5], -1) <= 0 then
            redis.call('HDEL', KEYS[2], ARGV[5])
            changed = 1
          end
        end
        -- retention: both keys outlive their latest entry by the grace (another instance's sweep can still announce
        -- that entry's user as gone), then expire; Redis deletes them with their last entry anyway.
        local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        if latest[2] then
          local at = string.format('%d', tonumber(latest[2]) + tonumber(ARGV[6]))
          redis.call('PEXPIREAT', KEYS[1], at)
          redis.call('PEXPIREAT', KEYS[2], at)
        end
        local members = {}
        if ARGV[1] == 'sweep' then
          members = redis.call('HKEYS', KEYS[2])
        end
        return {changed, gone, members}
        """;

    private readonly long _graceMs = (long)options.Value.PresenceTtl.TotalMilliseconds;

    public async Task<PresenceChange> JoinAsync(string room, string instance, string user, DateTimeOffset expiresAt) =>
        Read(await RedisCalls.Run(() => Evaluate(connection.Multiplexer.GetDatabase(), room, "join", instance, user, expiresAt))).Change;

    public async Task<PresenceChange> LeaveAsync(string room, string instance, string user) =>
        Read(await RedisCalls.Run(() => Evaluate(connection.Multiplexer.GetDatabase(), room, "leave", instance, user, time.GetUtcNow()))).Change;

    public async Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room) =>
        Read(await RedisCalls.Run(() => Evaluate(connection.Multiplexer.GetDatabase(), room, "sweep", "", "", time.GetUtcNow())));

    /// <summary>
    /// All renewals are written before the first reply is awaited: the multiplexer pipelines them on its connections,
    /// so ten thousand entries cost a few round trips, not ten thousand.
    /// </summary>
    public async Task<IReadOnlyList<PresenceChange>> RefreshAsync(IReadOnlyList<(string Room, string User)> entries, string instance,
        DateTimeOffset expiresAt)
    {
        var database = connection.Multiplexer.GetDatabase();
        var pending = entries.Select(e => Evaluate(database, e.Room, "join", instance, e.User, expiresAt)).ToArray();
        var results = await RedisCalls.Run(() => Task.WhenAll(pending));
        return [.. results.Select(r => Read(r).Change)];
    }

    private Task<RedisResult> Evaluate(IDatabaseAsync database, string room, string mode, string instance, string user,
        DateTimeOffset expiresAt) =>
        database.ScriptEvaluateAsync(PresenceScript, [keys.Presence(room), keys.Users(room)],
            [mode, time.GetUtcNow().ToUnixTimeMilliseconds(), expiresAt.ToUnixTimeMilliseconds(), mode == "sweep" ? "" : $"{instance} {user}", user, _graceMs]);

    private static (IReadOnlyList<string> Members, PresenceChange Change) Read(RedisResult result)
    {
        var parts = (RedisResult[])result!;
        string[] gone = [.. ((RedisResult[])parts[1]!).Select(r => (string)r!)];
        string[] members = [.. ((RedisResult[])parts[2]!).Select(r => (string)r!).Order(StringComparer.Ordinal)];
        return (members, new PresenceChange((long)parts[0] == 1, gone));
    }
}
