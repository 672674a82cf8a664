using ChatServer.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ChatServer.Rooms;

/// <summary>
/// Rooms on Redis: one Lua script numbers, stores, trims and publishes each message, so history order, <c>seq</c> order
/// and delivery order agree on every instance however many senders write at once. One channel per room, subscribed
/// through a <see cref="ChannelMessageQueue"/> so its handler runs one message at a time, in arrival order.
/// </summary>
internal sealed class RedisRoomBus(RedisConnection connection, RoomKeys keys, IOptions<ChatOptions> options, ILogger<RedisRoomBus> logger)
    : IRoomBus
{
    // KEYS: meta hash, history list. ARGV: open message JSON, history length, epoch candidate, channel.
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
        redis.call('PUBLISH', ARGV[4], entry)
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

    private readonly int _historyLength = options.Value.HistoryLength;

    public bool IsAvailable => connection.IsConnected;

    public async Task<IAsyncDisposable> SubscribeAsync(string room, Action<ReadOnlyMemory<byte>> onEntry)
    {
        var queue = await Run(() => connection.Multiplexer.GetSubscriber().SubscribeAsync(keys.Channel(room)));
        queue.OnMessage(message =>
        {
            try
            {
                onEntry((byte[])message.Message!);
            }
            catch (Exception ex)   // the library would swallow it silently
            {
                RoomLog.DeliveryFailed(logger, room, ex);
            }
        });
        return new Subscription(queue, room, logger);
    }

    public async Task<(long Seq, string Epoch)> AppendAsync(string room, byte[] messagePrefix)
    {
        var result = await Run(() => connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(AppendScript,
            [keys.Meta(room), keys.History(room)],
            [messagePrefix, _historyLength, Epochs.New(), keys.Channel(room).ToString()]));
        var parts = (RedisResult[])result!;
        return ((long)parts[0], (string)parts[1]!);
    }

    public async Task<RoomHistory> ReadAsync(string room)
    {
        var result = await Run(() => connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(ReadScript,
            [keys.Meta(room), keys.History(room)], [Epochs.New()]));
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

    public async Task PublishAsync(string room, byte[] entry) =>
        await Run(() => connection.Multiplexer.GetSubscriber().PublishAsync(keys.Channel(room), entry));

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

    private sealed class Subscription(ChannelMessageQueue queue, string room, ILogger logger) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await queue.UnsubscribeAsync();
            }
            catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
            {
                RoomLog.UnsubscribeFailed(logger, room, ex);   // Redis forgets it anyway when the connection drops
            }
        }
    }
}
