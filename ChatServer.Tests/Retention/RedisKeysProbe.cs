using StackExchange.Redis;

namespace ChatServer.Tests.Retention;

/// <summary>What a test's key prefix holds in Redis, read on every primary (one on Redis, three on the Cluster).</summary>
internal static class RedisKeysProbe
{
    public static async Task<string> ConnectionStringAsync(Backend backend) =>
        backend == Backend.Cluster ? (await TestRedisCluster.GetAsync()).ConnectionString : TestRedis.ConnectionString;

    /// <summary>Every key under <paramref name="prefix"/> with its time to live (null: no expiry).</summary>
    public static async Task<IReadOnlyList<(string Key, TimeSpan? Ttl)>> KeysAsync(Backend backend, string prefix)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(await ConnectionStringAsync(backend));
        var database = redis.GetDatabase();
        var found = new List<(string, TimeSpan?)>();
        foreach (var server in redis.GetServers().Where(s => !s.IsReplica))
        {
            await foreach (var key in server.KeysAsync(pattern: prefix + "*"))
            {
                found.Add((key.ToString(), await database.KeyTimeToLiveAsync(key)));
            }
        }

        return found;
    }

    /// <summary>Channels under <paramref name="prefix"/> that some client still subscribes to, classic and sharded.</summary>
    public static async Task<IReadOnlyList<string>> ChannelsAsync(Backend backend, string prefix)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(await ConnectionStringAsync(backend));
        var found = new List<string>();
        foreach (var server in redis.GetServers().Where(s => !s.IsReplica))
        {
            foreach (var command in new[] { "CHANNELS", "SHARDCHANNELS" })
            {
                var result = await server.ExecuteAsync("PUBSUB", command, prefix + "*");
                found.AddRange(((RedisResult[])result!).Select(r => (string)r!));
            }
        }

        return found;
    }
}
