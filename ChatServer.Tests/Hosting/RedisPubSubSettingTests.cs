namespace ChatServer.Tests.Hosting;

public sealed class RedisPubSubSettingTests
{
    [TestCase("Bogus")]
    [TestCase("7")]
    public void A_pub_sub_mode_that_is_not_Classic_or_Sharded_stops_the_server_at_start(string value)
    {
        var settings = new Dictionary<string, string?> { ["Redis:PubSub"] = value };

        var failure = Assert.Catch(() => new ChatHost(null, settings).Dispose());

        Assert.That(failure!.ToString(), Does.Contain("Redis:PubSub"));
    }
}
