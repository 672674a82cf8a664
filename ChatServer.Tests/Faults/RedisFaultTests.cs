using System.Net;
using static ChatServer.Tests.Faults.FaultHelpers;

namespace ChatServer.Tests.Faults;

/// <summary>
/// Faults injected for real into a Redis of the test's own (never the shared one): the process stopped and started
/// again, its subscription connections killed, its data lost. Two instances with clients on both, throughout.
/// </summary>
public sealed class RedisFaultTests
{
    private const string StoreUnavailable = "The message store is unavailable";

    /// <summary>These tests send faster than a person; the rate limit has its own tests.</summary>
    private static readonly Dictionary<string, string?> Unlimited = new()
    {
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
    };

    [Test, CancelAfter(90_000)]
    public async Task While_Redis_is_down_frames_get_ok_false_and_readyz_503_and_afterwards_everything_resumes(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var hostA = new ChatHost(redis.ConnectionString, Unlimited);
        await using var hostB = new ChatHost(redis.ConnectionString, Unlimited);
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken);
        await alice.RequestAsync(new { type = "sendMessage", text = "before" }, cancellationToken);
        Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("before"));

        await redis.SaveAndStopAsync();
        await WaitReadyAsync(hostA, HttpStatusCode.ServiceUnavailable, cancellationToken);
        await WaitReadyAsync(hostB, HttpStatusCode.ServiceUnavailable, cancellationToken);

        var during = await alice.RequestAsync(new { type = "sendMessage", text = "during" }, cancellationToken);
        Assert.That((during.Ok, during.Error), Is.EqualTo((false, "The message store is unavailable; nothing was stored. Try again shortly.")));
        await using var carol = await ChatClient.ConnectAsync(hostB.WebSocketUri, cancellationToken);
        var refused = await carol.RequestAsync(new { type = "signin", user = "carol", room }, cancellationToken);
        Assert.That((refused.Ok, refused.Error), Is.EqualTo((false, during.Error)));
        var healthz = await hostA.CreateHttpClient().GetAsync("/healthz", cancellationToken);
        Assert.That(healthz.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the process stays up");

        await redis.StartAgainAsync();
        await WaitReadyAsync(hostA, HttpStatusCode.OK, cancellationToken);
        await WaitReadyAsync(hostB, HttpStatusCode.OK, cancellationToken);

        var after = await alice.RequestAsync(new { type = "sendMessage", text = "after" }, cancellationToken);
        Assert.That((after.Ok, after.Seq), Is.EqualTo((true, 2L)), "seq continues: 'during' was never stored");
        var next = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That((next.Text, next.Seq), Is.EqualTo(("after", 2L)), "bob's subscription works again, nothing in between");
        var history = await carol.RequestAsync(new { type = "signin", user = "carol", room }, cancellationToken);
        Assert.That(history.Messages.Select(m => m.Text), Is.EqualTo(new[] { "before", "after" }));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_script_cache_Redis_flushed_costs_nothing_the_append_loads_it_again(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var host = new ChatHost(redis.ConnectionString, Unlimited);
        var room = TestNames.Room();
        await using var sender = await ChatClient.SignInAsync(host.WebSocketUri, "sender", room, cancellationToken);

        var first = await sender.RequestAsync(new { type = "sendMessage", text = "before" }, cancellationToken);
        await AdminAsync(redis.ConnectionString, "SCRIPT", "FLUSH");
        var second = await sender.RequestAsync(new { type = "sendMessage", text = "after" }, cancellationToken);

        Assert.That((first.Ok, first.Seq, second.Ok, second.Seq), Is.EqualTo((true, 1L, true, 2L)), second.Raw);
    }

    [Test, CancelAfter(60_000)]
    public async Task Messages_published_while_an_instance_subscription_is_down_are_delivered_from_history_in_order(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var hostA = new ChatHost(redis.ConnectionString, Unlimited);
        await using var hostB = new ChatHost(redis.ConnectionString, Unlimited);
        var room = TestNames.Room();
        await using var listener = await ChatClient.SignInAsync(hostB.WebSocketUri, "listener", room, cancellationToken);
        await using var sender = await ChatClient.SignInAsync(hostA.WebSocketUri, "sender", room, cancellationToken);

        // Kill the subscriptions and send at once, round after round, until the instance had to repair a loss (a
        // message published before its subscription was back). Usually the first rounds do it; 50 bound the test.
        var acked = new List<long>();
        bool Repaired() => hostB.Logs.Contains("delivering them from history") || hostB.Logs.Contains("caught up");
        for (var round = 0; round < 50 && (round < 5 || !Repaired()); round++)
        {
            Assert.That(await KillSubscribersAsync(redis.ConnectionString), Is.GreaterThan(0), "there was a subscription to kill");
            // The client library resubscribes within a millisecond or two on loopback, sometimes before the next
            // publish: keep killing while this round's messages go out, so some are published while it is down.
            using var sending = new CancellationTokenSource();
            var killing = KillSubscribersUntilAsync(redis.ConnectionString, sending.Token);
            for (var i = 0; i < 10; i++)   // sent at once: most are published while the subscriptions are down
            {
                var ack = await sender.RequestAsync(new { type = "sendMessage", text = $"r{round}-{i}" }, cancellationToken);
                if (ack.Ok)
                {
                    acked.Add(ack.Seq!.Value);
                }
                else
                {
                    Assert.That(ack.Error, Does.StartWith(StoreUnavailable), ack.Raw);
                }
            }

            await sending.CancelAsync();
            await killing;
        }

        Assert.That(acked, Is.Not.Empty);
        var seen = new List<long>();
        while (seen.Count == 0 || seen[^1] < acked[^1])
        {
            var frame = await listener.NextAsync(cancellationToken);
            Assert.That(frame.Type, Is.Not.EqualTo("gap"), "history holds everything, so nothing may be reported lost");
            if (frame.Type == "message")
            {
                seen.Add(frame.Seq!.Value);
            }
        }

        Assert.That(seen, Is.EqualTo(Enumerable.Range(1, seen.Count).Select(n => (long)n)), "every message once, in order, no gap");
        Assert.That(seen, Is.SupersetOf(acked));
        Assert.That(Repaired(), Is.True, "the fault really cost pub/sub messages that the instance then repaired");
    }

    [TestCase(true)]
    [TestCase(false)]
    [CancelAfter(90_000)]
    public async Task When_Redis_loses_its_data_rooms_start_a_new_epoch_and_old_epochs_are_not_recovered(bool restartEmpty, CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var hostA = new ChatHost(redis.ConnectionString, Unlimited);
        await using var hostB = new ChatHost(redis.ConnectionString, Unlimited);
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken);
        for (var i = 1; i <= 3; i++)
        {
            await alice.RequestAsync(new { type = "sendMessage", text = $"old{i}" }, cancellationToken);
        }

        var oldLast = await bob.ExpectAsync(f => f.Type == "message" && f.Seq == 3, cancellationToken);

        if (restartEmpty)
        {
            redis.Stop();                      // SIGKILL, persistence off: the data is gone
            await redis.StartAgainAsync();
            await WaitReadyAsync(hostA, HttpStatusCode.OK, cancellationToken);
            await WaitReadyAsync(hostB, HttpStatusCode.OK, cancellationToken);
        }
        else
        {
            await AdminAsync(redis.ConnectionString, "FLUSHALL");
        }

        var fresh = await alice.RequestAsync(new { type = "sendMessage", text = "new1" }, cancellationToken);
        Assert.That((fresh.Ok, fresh.Seq), Is.EqualTo((true, 1L)), fresh.Raw);

        // Connected clients get the new generation's message, not dropped as an old seq.
        var live = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That((live.Text, live.Seq), Is.EqualTo(("new1", 1L)));
        Assert.That(live.Epoch, Is.Not.EqualTo(oldLast.Epoch));

        // A client coming back with the old epoch learns that recovery was impossible and gets the new history.
        await using var back = await ChatClient.ConnectAsync(hostB.WebSocketUri, cancellationToken);
        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "carol", room, since = 3, epoch = oldLast.Epoch }, cancellationToken);
        Assert.That((ack.Ok, ack.Recovered, ack.Epoch), Is.EqualTo((true, (bool?)false, live.Epoch)), ack.Raw);
        Assert.That(ack.Messages.Select(m => (m.Text, m.Seq, m.Epoch)), Is.EqualTo(new[] { ("new1", (long?)1L, live.Epoch) }));
    }

    private static async Task KillSubscribersUntilAsync(string redis, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            await KillSubscribersAsync(redis);
            await Task.Yield();
        }
    }
}
