using ChatServer.Hosting;
using StackExchange.Redis;

namespace ChatServer.Rooms;

/// <summary>
/// Room channels on Redis pub/sub (sharded on a Cluster): at most once. Each subscription is a
/// <see cref="ChannelMessageQueue"/>, whose handler runs one message at a time, in arrival order.
/// </summary>
internal sealed class RedisRoomChannel : IRoomChannel
{
    private readonly RedisConnection _connection;
    private readonly RoomKeys _keys;
    private readonly ILogger<RedisRoomChannel> _logger;

    public RedisRoomChannel(RedisConnection connection, RoomKeys keys, ILogger<RedisRoomChannel> logger)
    {
        (_connection, _keys, _logger) = (connection, keys, logger);
        connection.Restored += () => Restored?.Invoke();
    }

    /// <summary>Pub/sub is at-most-once: whatever was published while a connection was down is lost to this instance.</summary>
    public event Action? Restored;

    public async Task<IAsyncDisposable> SubscribeAsync(string room, Action<ReadOnlyMemory<byte>> onEntry, CancellationToken cancellationToken)
    {
        var queue = await RedisCalls.Run(() => _connection.Multiplexer.GetSubscriber().SubscribeAsync(_keys.Channel(room)).WaitAsync(cancellationToken));
        queue.OnMessage(message => onEntry((byte[])message.Message!));
        return new Subscription(queue, room, _logger);
    }

    public Task PublishAsync(string room, byte[] entry) =>
        RedisCalls.Run(() => _connection.Multiplexer.GetSubscriber().PublishAsync(_keys.Channel(room), entry));

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
