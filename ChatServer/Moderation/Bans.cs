using System.Collections.Concurrent;
using System.Globalization;
using ChatServer.Hosting;
using ChatServer.Rooms;

namespace ChatServer.Moderation;

/// <summary>A user banned from a room until <see cref="Until"/> (<c>null</c>: until lifted), with the operator's reason.</summary>
internal sealed record Ban(string User, DateTimeOffset? Until, string? Reason)
{
    /// <summary>What a refused <c>signin</c>/<c>updateSocketId</c> is told (API.md, bans).</summary>
    public string Sentence(string room)
    {
        var until = Until is { } at ? at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "the ban is lifted";
        return string.IsNullOrWhiteSpace(Reason) ? $"You are banned from room '{room}' until {until}." : $"You are banned from room '{room}' until {until}: {Reason}.";
    }

    public bool IsActive(DateTimeOffset now) => Until is not { } until || until > now;
}

/// <summary>
/// Where bans live, so they hold on every instance and outlive the one that set them: a hash per room in Redis (its
/// expiry the latest ban's end, or none while a ban without end stands), or the process in the in-process default.
/// </summary>
internal interface IBanStore
{
    Task SetAsync(string room, Ban ban);

    Task RemoveAsync(string room, string user);

    /// <summary>The room's bans in force now, by user.</summary>
    Task<IReadOnlyList<Ban>> ListAsync(string room);

    /// <summary>The user's ban in force in the room now, if any.</summary>
    Task<Ban?> FindAsync(string room, string user);
}

internal sealed class RedisBanStore(RedisConnection connection, RoomKeys keys, TimeProvider time) : IBanStore
{
    // KEYS: the room's ban hash. ARGV: user, "<until ms or 0> <reason>" to set ("" to remove). Then the hash keeps only
    // bans in force, and expires when the last of them ends (none while one without end stands).
    private const string UpdateScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
        local all = redis.call('HGETALL', KEYS[1])
        local latest, forever = 0, false
        for i = 1, #all, 2 do
          local untilMs = tonumber(string.match(all[i + 1], '^(%d+)'))
          if untilMs == 0 then forever = true
          elseif untilMs <= now then redis.call('HDEL', KEYS[1], all[i])
          elseif untilMs > latest then latest = untilMs end
        end
        if forever then redis.call('PERSIST', KEYS[1])
        elseif latest > 0 then redis.call('PEXPIREAT', KEYS[1], latest) end
        return 1
        """;

    public Task SetAsync(string room, Ban ban) => UpdateAsync(room, ban.User, $"{ban.Until?.ToUnixTimeMilliseconds() ?? 0} {ban.Reason}");

    public Task RemoveAsync(string room, string user) => UpdateAsync(room, user, "");

    public async Task<IReadOnlyList<Ban>> ListAsync(string room)
    {
        var entries = await RedisCalls.Run(() => connection.Multiplexer.GetDatabase().HashGetAllAsync(keys.Bans(room)));
        var now = time.GetUtcNow();
        return [.. entries.Select(e => Parse(e.Name.ToString(), e.Value.ToString())).Where(b => b.IsActive(now)).OrderBy(b => b.User, StringComparer.Ordinal)];
    }

    public async Task<Ban?> FindAsync(string room, string user)
    {
        var value = await RedisCalls.Run(() => connection.Multiplexer.GetDatabase().HashGetAsync(keys.Bans(room), user));
        return value.IsNull || Parse(user, value.ToString()) is not { } ban || !ban.IsActive(time.GetUtcNow()) ? null : ban;
    }

    private async Task UpdateAsync(string room, string user, string value) =>
        await RedisCalls.Run(() => connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(UpdateScript, [keys.Bans(room)], [user, value]));

    private static Ban Parse(string user, string value)
    {
        var space = value.IndexOf(' ', StringComparison.Ordinal);
        var untilMs = long.Parse(space < 0 ? value : value[..space], CultureInfo.InvariantCulture);
        var reason = space < 0 ? null : value[(space + 1)..];
        return new Ban(user, untilMs == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(untilMs), string.IsNullOrEmpty(reason) ? null : reason);
    }
}

internal sealed class InMemoryBanStore(TimeProvider time) : IBanStore
{
    private readonly ConcurrentDictionary<(string Room, string User), Ban> _bans = new();

    public Task SetAsync(string room, Ban ban)
    {
        _bans[(room, ban.User)] = ban;
        return Task.CompletedTask;
    }

    public Task RemoveAsync(string room, string user)
    {
        _bans.TryRemove((room, user), out _);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<Ban>> ListAsync(string room)
    {
        var now = time.GetUtcNow();
        foreach (var ((r, user), ban) in _bans)
        {
            if (!ban.IsActive(now))
            {
                _bans.TryRemove(KeyValuePair.Create((r, user), ban));   // expired: forget it, as Redis does
            }
        }

        return Task.FromResult<IReadOnlyList<Ban>>([.. _bans.Where(b => b.Key.Room == room).Select(b => b.Value).OrderBy(b => b.User, StringComparer.Ordinal)]);
    }

    public Task<Ban?> FindAsync(string room, string user) =>
        Task.FromResult(_bans.TryGetValue((room, user), out var ban) && ban.IsActive(time.GetUtcNow()) ? ban : null);
}
