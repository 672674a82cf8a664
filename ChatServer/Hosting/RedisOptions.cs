namespace ChatServer.Hosting;

/// <summary>
/// Where Redis is. <see cref="Configuration"/> (<c>Redis__Configuration</c>) takes a full StackExchange.Redis
/// configuration string, so AUTH and TLS work (<c>host:6378,password=…,ssl=true</c>); otherwise <c>REDISHOST</c> and
/// <c>REDISPORT</c>, as Cloud Run deploys set them. With neither, the service runs on its in-process bus.
/// </summary>
public sealed class RedisOptions
{
    public const string Section = "Redis";

    public string? Configuration { get; set; }

    /// <summary>
    /// Path to a PEM file holding the certificate of the CA that signed Redis's TLS certificate, trusted for that
    /// connection only, as an operator trusts Memorystore's server CA (its in-transit encryption uses a private CA).
    /// <c>Redis__TrustedCaCertificate</c>; unset: the machine's trust store decides.
    /// </summary>
    public string? TrustedCaCertificate { get; set; }

    /// <summary>Bound from the top-level <c>REDISHOST</c> setting.</summary>
    public string? Host { get; set; }

    /// <summary>Bound from the top-level <c>REDISPORT</c> setting; default 6379.</summary>
    public string? Port { get; set; }

    /// <summary>Prefix of every key and channel, so several deployments can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "chat:";

    /// <summary>
    /// <see cref="RedisPubSubMode.Sharded"/> on Redis Cluster (Redis 7 or later), so each shard carries only its own
    /// rooms' messages; <see cref="RedisPubSubMode.Classic"/> works everywhere, and is all Redis 6 and older offer.
    /// </summary>
    public RedisPubSubMode PubSub { get; set; } = RedisPubSubMode.Classic;

    /// <summary>
    /// Room channels' subscriptions on a connection of the server's own (<see cref="RedisSubscriber"/>: one socket, one
    /// thread, each message handed to its room as it arrives) when Redis is one endpoint without TLS and
    /// <see cref="PubSub"/> is <see cref="RedisPubSubMode.Classic"/>. False, or any other setup, keeps them on
    /// StackExchange.Redis. <c>Redis__DirectPubSub</c>.
    /// </summary>
    public bool DirectPubSub { get; set; } = true;

    /// <summary>
    /// The append script (the one Redis command per message) on the server's own connection too
    /// (<see cref="RedisSubscriber"/> speaking RESP3: written from the caller's thread, the reply read and the ack sent on
    /// its thread) when Redis is 6 or later, one endpoint without TLS, and not a Cluster node. False, or any other setup,
    /// keeps it on StackExchange.Redis. <c>Redis__DirectCommands</c>.
    /// </summary>
    public bool DirectCommands { get; set; } = true;

    /// <summary>
    /// How many of those own connections (each with its thread); a room always uses the same one. 0 (the default): one
    /// per two processors, 1 to 8. More raise what one instance can deliver at its peak, at more CPU per delivery below
    /// it (docs/benchmarks.md). <c>Redis__DirectConnections</c>.
    /// </summary>
    public int DirectConnections { get; set; }

    /// <summary>
    /// The frames an own connection's thread delivers for one read from Redis go to their sockets in one io_uring
    /// submission (<see cref="Connections.SendBatch"/>) instead of a <c>send</c> call each, where the kernel allows
    /// io_uring (Linux 6.1 or later, not blocked by a sandbox); elsewhere, or false, one <c>send</c> per frame.
    /// <c>Redis__BatchSends</c>.
    /// </summary>
    public bool BatchSends { get; set; } = true;

    /// <summary>
    /// While an own connection's reads come closer together than this many milliseconds (a busy instance), the
    /// deliveries of one read wait up to this long, from that read, for those of the reads that follow, so a member's
    /// frames go out together: fewer sends and segments per delivery for at most this much latency, and only under
    /// load (a read after a quiet spell goes out at once). 0: every read's deliveries go out at once.
    /// <c>Redis__BatchWindowMs</c>; default 10.
    /// </summary>
    public int BatchWindowMs { get; set; } = 10;

    /// <summary>The configuration string in effect, or <c>null</c> for the in-process bus.</summary>
    public string? EffectiveConfiguration() =>
        !string.IsNullOrWhiteSpace(Configuration) ? Configuration
        : !string.IsNullOrWhiteSpace(Host) ? $"{Host}:{(string.IsNullOrWhiteSpace(Port) ? "6379" : Port)}"
        : null;
}
