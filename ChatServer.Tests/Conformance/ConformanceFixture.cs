namespace ChatServer.Tests.Conformance;

/// <summary>
/// One in-process host (in-process bus) per conformance fixture. By default keep-alive pings are a minute apart, so
/// none gets between a test and the frame it reads, and the rate limit is out of the way of frames sent in bursts.
/// </summary>
public abstract class ConformanceFixture
{
    protected ChatHost Host { get; private set; } = null!;

    protected virtual IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:KeepAlive"] = "00:01:00",
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
    };

    [OneTimeSetUp]
    public void StartHost() => Host = new ChatHost(redis: null, Settings);

    [OneTimeTearDown]
    public async Task StopHostAsync() => await Host.DisposeAsync();
}
