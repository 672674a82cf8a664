using System.Diagnostics;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;
using System.Collections.Concurrent;
using StackExchange.Redis;

namespace ChatServer.Rooms;

/// <summary>
/// Rooms on Redis: one Lua script numbers, stores, trims and publishes each message, so history order, <c>seq</c> order
/// and delivery order agree on every instance however many senders write at once. One channel per room, subscribed
/// through a <see cref="ChannelMessageQueue"/> so its handler runs one message at a time, in arrival order.
/// </summary>
internal sealed class RedisRoomBus : IRoomBus
{
    // KEYS: meta hash, history list. ARGV: open message JSON, history length, epoch candidate, channel, PUBLISH or
    // SPUBLISH. One script text for both modes keeps one cached SHA. The channel is not a key, but on a Cluster it has
    // the room's hash tag, so SPUBLISH from the script stays in the slot the keys routed it to.
    // Lua numbers print as integers up to 2^53, far beyond any seq.
    private const string AppendScript = """
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then
          epoch = ARGV[3]
          redis.call('HSET', KEYS[1], 'epoch', epoch)
        end
        local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
        local entry = 'm ' .. seq .. ' ' .. epoch .. ' ' .. ARGV[1] .. ',"seq":' .. seq .. ',"epoch":"' .. epoch .. '"}'
        redis.call('RPUSH', KEYS[2], entry)
        redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
        redis.call(ARGV[5], ARGV[4], entry)
        return {seq, epoch}
        """;

    // KEYS: meta hash, history list. ARGV: epoch candidate. A room read for the first time (or after Redis lost its
    // data) gets its epoch here, so the ack can name it before any message exists.
    private const string ReadScript = """
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then
          epoch = ARGV[1]
          redis.call('HSET', KEYS[1], 'epoch', epoch)
        end
        local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
        return {epoch, seq, redis.call('LRANGE', KEYS[2], 0, -1)}
        """;

    // KEYS: presence zset, users hash. ARGV: mode (join|leave|sweep), now (ms), expiry (ms), "<instance> <user>", user.
    // Sweeps expired entries first; returns {changed, users gone by expiry}. users counts instances per user, so a
    // user is "present" while any instance holds it.
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
        local members = {}
        if ARGV[1] == 'sweep' then
          members = redis.call('HKEYS', KEYS[2])
        end
        return {changed, gone, members}
        """;

    private readonly RedisConnection _connection;
    private readonly RoomKeys _keys;
    private readonly ILogger<RedisRoomBus> _logger;
    private readonly TimeProvider _time;
    private readonly int _historyLength;
    private readonly ConcurrentDictionary<RedisRoomSubscription, byte> _subscriptions = new();

    public RedisRoomBus(RedisConnection connection, RoomKeys keys, IOptions<ChatOptions> options, TimeProvider time,
        ChatMetrics metrics, ILogger<RedisRoomBus> logger)
    {
        Metrics = metrics;
        (_connection, _keys, _time, _logger) = (connection, keys, time, logger);
        _historyLength = options.Value.HistoryLength;
        connection.Restored += OnRestored;
    }

    public bool IsAvailable => _connection.IsConnected;

    internal ChatMetrics Metrics { get; }

    public async Task<IAsyncDisposable> SubscribeAsync(string room, Action<RoomEntry> onEntry)
    {
        var subscription = new RedisRoomSubscription(this, room, onEntry, _logger);
        await subscription.StartAsync();
        _subscriptions.TryAdd(subscription, 0);
        return new Unsubscriber(this, subscription);
    }

    /// <summary>Subscribes to the room's channel; the queue's handler runs one message at a time, in arrival order.</summary>
    internal Task<ChannelMessageQueue> SubscribeChannelAsync(string room) =>
        Run(() => _connection.Multiplexer.GetSubscriber().SubscribeAsync(_keys.Channel(room)));

    public async Task<(long Seq, string Epoch)> AppendAsync(string room, byte[] messagePrefix)
    {
        var started = Stopwatch.GetTimestamp();
        var result = await Run(() => _connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(AppendScript,
            [_keys.Meta(room), _keys.History(room)],
            [messagePrefix, _historyLength, Epochs.New(), _keys.Channel(room).ToString(), _keys.PublishCommand]));
        Metrics.ScriptCompleted(started);
        var parts = (RedisResult[])result!;
        return ((long)parts[0], (string)parts[1]!);
    }

    public async Task<RoomHistory> ReadAsync(string room)
    {
        var result = await Run(() => _connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(ReadScript,
            [_keys.Meta(room), _keys.History(room)], [Epochs.New()]));
        var parts = (RedisResult[])result!;
        var stored = (RedisResult[])parts[2]!;
        var messages = new List<RoomEntry>(stored.Length);
        foreach (var item in stored)
        {
            if (RoomEntry.TryParse((byte[])item!, out var entry) && entry.Kind == RoomEntryKind.Message)
            {
                messages.Add(entry);
            }
        }

        return new RoomHistory((string)parts[0]!, (long)parts[1], messages);
    }

    public async Task<PresenceChange> JoinPresenceAsync(string room, string instance, string user, DateTimeOffset expiresAt) =>
        (await PresenceAsync(room, "join", $"{instance} {user}", user, expiresAt)).Change;

    public async Task<PresenceChange> LeavePresenceAsync(string room, string instance, string user) =>
        (await PresenceAsync(room, "leave", $"{instance} {user}", user, _time.GetUtcNow())).Change;

    public async Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room) =>
        await PresenceAsync(room, "sweep", "", "", _time.GetUtcNow());

    private async Task<(IReadOnlyList<string> Members, PresenceChange Change)> PresenceAsync(string room, string mode, string entry,
        string user, DateTimeOffset expiresAt)
    {
        var result = await Run(() => _connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(PresenceScript,
            [_keys.Presence(room), _keys.Users(room)],
            [mode, _time.GetUtcNow().ToUnixTimeMilliseconds(), expiresAt.ToUnixTimeMilliseconds(), entry, user]));
        var parts = (RedisResult[])result!;
        string[] gone = [.. ((RedisResult[])parts[1]!).Select(r => (string)r!)];
        string[] members = [.. ((RedisResult[])parts[2]!).Select(r => (string)r!).Order(StringComparer.Ordinal)];
        return (members, new PresenceChange((long)parts[0] == 1, gone));
    }

    public async Task PublishAsync(string room, byte[] entry) =>
        await Run(() => _connection.Multiplexer.GetSubscriber().PublishAsync(_keys.Channel(room), entry));

    /// <summary>Turns "Redis is not there" into the one exception the session answers with <c>ok:false</c>.</summary>
    private static async Task<T> Run<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException or RedisServerException)
        {
            throw new StoreUnavailableException("Redis did not complete the operation.", ex);
        }
    }

    /// <summary>
    /// After a reconnect every room catches up from history. Twice: once at once, and once a second later, because the
    /// library may still be re-sending SUBSCRIBE when it reports the connection restored; anything published in that
    /// window is in history by the second pass (and any later message would trigger a catch-up by itself).
    /// </summary>
    private void OnRestored() => _ = CatchUpAllAsync();

    private async Task CatchUpAllAsync()
    {
        foreach (var delay in s_catchUpDelays)
        {
            await Task.Delay(delay, _time);
            foreach (var subscription in _subscriptions.Keys)
            {
                try
                {
                    await subscription.CatchUpAsync();
                }
                catch (Exception ex)   // nobody awaits this task: a failure must be logged, not lost
                {
                    RoomLog.CatchUpFailed(_logger, subscription.Room, ex);
                }
            }
        }
    }

    private static readonly TimeSpan[] s_catchUpDelays = [TimeSpan.Zero, TimeSpan.FromSeconds(1)];

    private sealed class Unsubscriber(RedisRoomBus bus, RedisRoomSubscription subscription) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            bus._subscriptions.TryRemove(subscription, out _);
            return subscription.DisposeAsync();
        }
    }
}
