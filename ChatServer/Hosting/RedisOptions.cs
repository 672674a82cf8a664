namespace ChatServer.Hosting;

/// <summary>
/// Where Redis is. <see cref="Configuration"/> (<c>Redis__Configuration</c>) takes a full StackExchange.Redis
/// configuration string, so AUTH and TLS work (<c>host:6378,user=…,password=…,ssl=true</c>); otherwise <c>REDISHOST</c>
/// and <c>REDISPORT</c>, as Cloud Run deploys set them. With neither, the service runs on its in-process bus.
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

    /// <summary>The configuration string in effect, or <c>null</c> for the in-process bus.</summary>
    public string? EffectiveConfiguration() =>
        !string.IsNullOrWhiteSpace(Configuration) ? Configuration
        : !string.IsNullOrWhiteSpace(Host) ? $"{Host}:{(string.IsNullOrWhiteSpace(Port) ? "6379" : Port)}"
        : null;
}
