namespace ChatServer.Tests;

public enum Backend
{
    /// <summary>Two hosts on the shared test Redis.</summary>
    Redis,

    /// <summary>One host on the in-process bus (no Redis); <c>HostB</c> is the same host.</summary>
    InProcess,
}

/// <summary>
/// Base of the protocol tests, run once per <see cref="Backend"/>. With Redis, <see cref="HostA"/> and
/// <see cref="HostB"/> are two real instances sharing one Redis, so "the other instance" is really another process
/// state; in-process, both names point at the one host, and the same assertions hold for a single instance.
/// </summary>
public abstract class TwoHostFixture(Backend backend)
{
    protected ChatHost HostA { get; private set; } = null!;

    protected ChatHost HostB { get; private set; } = null!;

    protected Backend Backend { get; } = backend;

    /// <summary>Settings (configuration keys) for both hosts.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>();

    [OneTimeSetUp]
    public void StartHosts()
    {
        var redis = Backend == Backend.Redis ? TestRedis.ConnectionString : null;
        HostA = new ChatHost(redis, Settings);
        HostB = Backend == Backend.Redis ? new ChatHost(redis, Settings) : HostA;
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
