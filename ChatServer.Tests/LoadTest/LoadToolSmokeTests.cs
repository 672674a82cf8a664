using ChatServer.LoadTest;

namespace ChatServer.Tests.LoadTest;

/// <summary>
/// Tiny runs of the load-test tool against two real instances: they only check that it completes and counts right.
/// Its measurements are not tests (docs/benchmarks.md has them).
/// </summary>
public sealed class LoadToolSmokeTests
{
    [Test, CancelAfter(30_000)]
    public async Task Fanout_run_counts_every_message_delivered_once_to_every_member(CancellationToken cancellationToken)
    {
        await using var hostA = new ChatHost(TestRedis.ConnectionString);
        await using var hostB = new ChatHost(TestRedis.ConnectionString);
        // 60 messages from 6 senders in one second: 10 a second each, under the default per-connection rate limit.
        var settings = new FanoutSettings([hostA.WebSocketUri, hostB.WebSocketUri], Rooms: 2, Members: 3, Rate: 60, DurationSeconds: 1);

        var result = await new FanoutRunner(settings, [], TextWriter.Null).RunAsync(cancellationToken);

        Assert.Multiple(() =>
        {
            Assert.That((result.MessagesSent, result.DeliveriesExpected, result.Delivered), Is.EqualTo((60L, 180L, 180L)));
            Assert.That((result.Lost, result.Duplicated, result.OutOfOrder, result.Rejected), Is.EqualTo((0L, 0L, 0L, 0L)));
            Assert.That(result.LatencyP99Ms, Is.GreaterThan(0).And.LessThanOrEqualTo(result.LatencyMaxMs));
            Assert.That(result.ServerCpuSeconds, Is.Null, "no server process ids were given");
        });
    }

    [Test, CancelAfter(30_000)]
    public async Task Idle_run_opens_and_signs_in_every_connection(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(TestRedis.ConnectionString);
        var settings = new IdleSettings(host.WebSocketUri, Connections: 30, Rooms: 3, SourceAddresses: 2, SettleSeconds: 0);

        var result = await new IdleRunner(settings, Environment.ProcessId, TextWriter.Null).RunAsync(cancellationToken);

        Assert.That((result.Opened, result.ServerRssAfterBytes > 0, result.ServerKiBPerConnection.HasValue), Is.EqualTo((30, true, true)));
    }

    [Test, CancelAfter(30_000)]
    public async Task History_run_fills_a_room_to_its_history_length_and_times_each_read(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(TestRedis.ConnectionString, new Dictionary<string, string?>
        {
            ["Chat:HistoryLength"] = "20",
            ["Chat:RateLimitPerSecond"] = "100000",
            ["Chat:RateLimitBurst"] = "100000",
        });
        var settings = new HistorySettings(host.WebSocketUri, Kept: 20, Samples: 3);

        var result = await new HistoryRunner(settings, TextWriter.Null).RunAsync(cancellationToken);

        Assert.That((result.Kept, result.Samples), Is.EqualTo((20, 3)));
        Assert.That(new[] { result.NewestPage, result.MiddlePage, result.CatchUp }.Select(r => r.MedianMs > 0 && r.MedianMs <= r.MaxMs),
            Is.All.True, "each read was timed (the runner itself checks each ack carried the messages it should)");
    }

    [Test, CancelAfter(30_000)]
    public async Task Rooms_run_visits_every_room_and_samples_memory_before_after_and_after_everyone_left(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(null, new Dictionary<string, string?>
        {
            ["Chat:RateLimitPerSecond"] = "100000",
            ["Chat:RateLimitBurst"] = "100000",
        });
        var settings = new RoomsSettings(host.WebSocketUri, Rooms: 40, Clients: 3, MessagesPerRoom: 1, RedisPort: null, SettleSeconds: 0, Repeat: 2);

        var result = await new RoomsRunner(settings, Environment.ProcessId, TextWriter.Null).RunAsync(cancellationToken);

        Assert.That(result.Samples.Select(s => s.ServerRssBytes > 0), Is.EqualTo(new[] { true, true, true, true, true }));
        Assert.That(result.Seconds, Has.Count.EqualTo(2));
        var registry = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ChatServer.Rooms.RoomRegistry>(host.Services);
        while (registry.RoomCount > 0)
        {
            await Task.Delay(50, cancellationToken);   // the last leaves land just after the clients closed
        }
    }
}
