using ChatServer.Hosting;
using ChatServer.Rooms;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ChatServer.Webhooks;

/// <summary>
/// Where a user is connected across rooms and instances, for <c>user.offline</c>: one entry per (instance, room) the
/// user is present in, kept beside the room's presence by <see cref="PresenceTracker"/> (the same joins, leaves,
/// refreshes and expiries). The operation that removes a user's last entry says so, exactly once across instances.
/// </summary>
internal interface IUserPresenceStore
{
    /// <summary>Records (or renews) that <paramref name="user"/> is in <paramref name="room"/> on <paramref name="instance"/> until <paramref name="expiresAt"/>.</summary>
    Task JoinAsync(string user, string instance, string room, DateTimeOffset expiresAt);

    /// <summary>Removes that entry; true when it was the user's last one (the user is offline now).</summary>
    Task<bool> LeaveAsync(string user, string instance, string room);

    /// <summary>Renews many entries in one pipelined batch.</summary>
    Task RefreshAsync(IReadOnlyList<(string Room, string User)> entries, string instance, DateTimeOffset expiresAt);

    /// <summary>Removes the user's expired entries (an instance that died); true when that removed the user's last one.</summary>
    Task<bool> SweepAsync(string user);
}

/// <summary>
/// On Redis: per user a sorted set of <c>"&lt;instance&gt; &lt;room&gt;"</c> scored by expiry (Unix ms), like a room's
/// presence set. Its key, <c>&lt;prefix&gt;user:{&lt;user&gt;}:rooms</c>, has a hash tag of its own (the user), so on
/// Redis Cluster it lives wherever the user hashes to and the script touches that one key: a separate call from the
/// room's presence script, whose keys share the room's slot. Every call sweeps the expired entries first; the call that
/// leaves the set empty, having removed something, reports the user offline. The key expires a presence TTL after its
/// latest entry and vanishes with its last entry.
/// </summary>
internal sealed class RedisUserPresenceStore(RedisConnection connection, IOptions<RedisOptions> redis, IOptions<ChatOptions> options,
    TimeProvider time) : IUserPresenceStore
{
    // KEYS: the user's zset. ARGV: mode (join|leave|sweep), now (ms), expiry (ms), "<instance> <room>", grace (ms).
    // Returns 1 when this call removed the user's last entry (offline), else 0.
    private const string UserScript = """
        local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
        if ARGV[1] == 'join' then
          redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
        elseif ARGV[1] == 'leave' then
          removed = removed + redis.call('ZREM', KEYS[1], ARGV[4])
        end
        local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        if latest[2] then
          redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(latest[2]) + tonumber(ARGV[5])))
          return 0
        end
        if removed > 0 then
          return 1
        end
        return 0
        """;

    private readonly string _prefix = redis.Value.KeyPrefix;
    private readonly long _graceMs = (long)options.Value.PresenceTtl.TotalMilliseconds;

    /// <summary>The user's key: its own hash tag, so it never shares a name (or needs a slot) with a room's keys.</summary>
    public RedisKey Key(string user) => $"{_prefix}user:{{{RoomKeys.Escape(user)}}}:rooms";

    public async Task JoinAsync(string user, string instance, string room, DateTimeOffset expiresAt) =>
        await RedisCalls.Run(() => Evaluate(connection.Multiplexer.GetDatabase(), "join", user, $"{instance} {room}", expiresAt));

    public async Task<bool> LeaveAsync(string user, string instance, string room) =>
        (long)(await RedisCalls.Run(() => Evaluate(connection.Multiplexer.GetDatabase(), "leave", user, $"{instance} {room}", time.GetUtcNow()))) == 1;

    public async Task<bool> SweepAsync(string user) =>
        (long)(await RedisCalls.Run(() => Evaluate(connection.Multiplexer.GetDatabase(), "sweep", user, "", time.GetUtcNow()))) == 1;

    public async Task RefreshAsync(IReadOnlyList<(string Room, string User)> entries, string instance, DateTimeOffset expiresAt)
    {
        var database = connection.Multiplexer.GetDatabase();
        var pending = entries.Select(e => Evaluate(database, "join", e.User, $"{instance} {e.Room}", expiresAt)).ToArray();
        await RedisCalls.Run(() => Task.WhenAll(pending));
    }

    private Task<RedisResult> Evaluate(IDatabaseAsync database, string mode, string user, string entry, DateTimeOffset expiresAt) =>
        database.ScriptEvaluateAsync(UserScript, [Key(user)],
            [mode, time.GetUtcNow().ToUnixTimeMilliseconds(), expiresAt.ToUnixTimeMilliseconds(), entry, _graceMs]);
}

/// <summary>In process (one instance, no expiry): the rooms each user is in; a user goes with the last room.</summary>
internal sealed class InMemoryUserPresenceStore : IUserPresenceStore
{
    private readonly Lock _sync = new();
    private readonly Dictionary<string, HashSet<string>> _users = new(StringComparer.Ordinal);

    /// <summary>Users with at least one room (tests).</summary>
    internal int UserCount
    {
        get
        {
            lock (_sync)
            {
                return _users.Count;
            }
        }
    }

    public Task JoinAsync(string user, string instance, string room, DateTimeOffset expiresAt)
    {
        Add(user, room);
        return Task.CompletedTask;
    }

    public Task<bool> LeaveAsync(string user, string instance, string room)
    {
        lock (_sync)
        {
            if (!_users.TryGetValue(user, out var rooms) || !rooms.Remove(room) || rooms.Count > 0)
            {
                return Task.FromResult(false);
            }

            _users.Remove(user);
            return Task.FromResult(true);
        }
    }

    public Task RefreshAsync(IReadOnlyList<(string Room, string User)> entries, string instance, DateTimeOffset expiresAt)
    {
        foreach (var (room, user) in entries)
        {
            Add(user, room);
        }

        return Task.CompletedTask;
    }

    public Task<bool> SweepAsync(string user) => Task.FromResult(false);   // nothing expires in one process

    private void Add(string user, string room)
    {
        lock (_sync)
        {
            if (!_users.TryGetValue(user, out var rooms))
            {
                _users[user] = rooms = new HashSet<string>(StringComparer.Ordinal);
            }

            rooms.Add(room);
        }
    }
}

/// <summary>
/// What <see cref="PresenceTracker"/> tells the webhooks: the room's own changes (<c>user.joined</c>,
/// <c>user.left</c>, decided by the room's presence script), and the user's entries across rooms, whose last removal is
/// <c>user.offline</c>. Best effort like presence itself: a store failure is logged, never thrown at a frame.
/// </summary>
internal sealed class PresenceWebhooks(IUserPresenceStore users, WebhookOutbox outbox, InstanceId instance, ILogger<PresenceWebhooks> logger)
{
    /// <summary>The room's presence changed across all instances: a first join or a last leave.</summary>
    public void Changed(string room, string user, bool present)
    {
        if (present)
        {
            outbox.UserJoined(room, user);
        }
        else
        {
            outbox.UserLeft(room, user);
        }
    }

    /// <summary><paramref name="user"/> expired out of <paramref name="room"/> (its instance died): left, and maybe offline.</summary>
    public async Task GoneAsync(string room, string user)
    {
        outbox.UserLeft(room, user);
        if (await RunAsync(() => users.SweepAsync(user)))
        {
            outbox.UserOffline(user);
        }
    }

    /// <summary>This instance's first connection of the user in the room.</summary>
    public Task JoinedAsync(string room, string user, DateTimeOffset expiresAt) =>
        RunAsync(async () =>
        {
            await users.JoinAsync(user, instance.Value, room, expiresAt);
            return false;
        });

    /// <summary>
    /// This instance's last connection of the user in the room closed: starts removing the user's entry, beside the
    /// room's leave. Pass the task to <see cref="LeftAsync"/> once the room's leave is announced.
    /// </summary>
    public Task<bool> LeavingAsync(string room, string user) => RunAsync(() => users.LeaveAsync(user, instance.Value, room));

    /// <summary>Queues <c>user.offline</c> when <paramref name="leaving"/> removed the user's last entry: after the room's <c>user.left</c>.</summary>
    public async Task LeftAsync(Task<bool> leaving, string user)
    {
        if (await leaving)
        {
            outbox.UserOffline(user);
        }
    }

    public Task RefreshAsync(IReadOnlyList<(string Room, string User)> entries, DateTimeOffset expiresAt) =>
        RunAsync(async () =>
        {
            await users.RefreshAsync(entries, instance.Value, expiresAt);
            return false;
        });

    private async Task<bool> RunAsync(Func<Task<bool>> operation)
    {
        try
        {
            return await operation();
        }
        catch (StoreUnavailableException ex)
        {
            WebhookLog.UserPresenceFailed(logger, ex);
            return false;
        }
    }
}
