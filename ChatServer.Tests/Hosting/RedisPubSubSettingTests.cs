namespace ChatServer.Tests.Hosting;

public sealed class RedisPubSubSettingTests
{
    [TestCase("Bogus")]
    [TestCase("7")]
    [CancelAfter(60_000)]
    public async Task A_pub_sub_mode_that_is_not_Classic_or_Sharded_stops_the_server_at_start(string value, CancellationToken cancellationToken)
    {
        var (exitCode, output) = await ChatProcess.RunFailingStartAsync(new Dictionary<string, string> { ["Redis:PubSub"] = value }, cancellationToken);

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(output, Does.Contain("Redis:PubSub"));
    }
}
