namespace ChatServer.Hosting;

/// <summary>How room channels use Redis pub/sub (<c>Redis__PubSub</c>).</summary>
public enum RedisPubSubMode
{
    /// <summary><c>PUBLISH</c>/<c>SUBSCRIBE</c>: works on any Redis; on a Cluster every message reaches every node.</summary>
    Classic,

    /// <summary>
    /// <c>SPUBLISH</c>/<c>SSUBSCRIBE</c> (Redis 7): a room's channel lives on the shard that owns the room's slot, so on a
    /// Cluster pub/sub traffic is spread over the shards instead of broadcast to all of them.
    /// </summary>
    Sharded,
}
