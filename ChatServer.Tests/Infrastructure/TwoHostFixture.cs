namespace ChatServer.Tests;

public enum Backend
{
    /// <summary>Two hosts on the shared test Redis.</summary>
    Redis,

    /// <summary>One host on the in-process bus (no Redis); <c>HostB</c> is the same host.</summary>
    InProcess,

    /// <summary>Two hosts on the test Redis Cluster (three primaries) with sharded pub/sub.</summary>
    Cluster,

    /// <summary>
    /// Two hosts on the test TLS Redis (<see cref="TestRedisTls"/>: TLS only, a private CA, an ACL user and password, as
    /// Memorystore with in-transit encryption and AUTH), trusting its CA through <c>Redis:TrustedCaCertificate</c>.
    /// </summary>
    RedisTls,
}

/// <summary>
/// Base of the protocol tests, run once per <see cref="Backend"/>. With Redis, <see cref="HostA"/> and
/// <see cref="HostB"/> are two real instances sharing one Redis, so "the other instance" is really another process
/// state; on the Cluster, the same over three shards with sharded pub/sub, rooms (GUID names) landing on every shard;
/// on the TLS Redis, two instances reaching it as a Memorystore deployment does;
/// in-process, both names point at the one host, and the same assertions hold for a single instance.
/// </summary>
public abstract class TwoHostFixture(Backend backend)
{
    protected ChatHost HostA { get; private set; } = null!;

    protected ChatHost HostB { get; private set; } = null!;

    protected Backend Backend { get; } = backend;

    /// <summary>Settings (configuration keys) for both hosts.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>();

    [OneTimeSetUp]
    public async Task StartHostsAsync()
    {
        switch (Backend)
        {
            case Backend.Redis:
                HostA = new ChatHost(TestRedis.ConnectionString, Settings);
                HostB = new ChatHost(TestRedis.ConnectionString, Settings);
                break;
            case Backend.Cluster:
                var cluster = await TestRedisCluster.GetAsync();
                var settings = new Dictionary<string, string?>(Settings) { ["Redis:PubSub"] = "Sharded" };
                HostA = new ChatHost(cluster.ConnectionString, settings);
                HostB = new ChatHost(cluster.ConnectionString, settings);
                break;
            case Backend.RedisTls:
                var tls = await TestRedisTls.GetAsync();
                var tlsSettings = new Dictionary<string, string?>(Settings);
                if (tls.CaCertificatePath is not null)
                {
                    tlsSettings["Redis:TrustedCaCertificate"] = tls.CaCertificatePath;
                }

                HostA = new ChatHost(tls.ConnectionString, tlsSettings);
                HostB = new ChatHost(tls.ConnectionString, tlsSettings);
                break;
            default:
                HostA = new ChatHost(null, Settings);
                HostB = HostA;
                break;
        }
    }

    [OneTimeTearDown]
    public async Task StopHostsAsync()
    {
        if (HostB != HostA)
        {
            await HostB.DisposeAsync();
        }

        await HostA.DisposeAsync();
    }
}
