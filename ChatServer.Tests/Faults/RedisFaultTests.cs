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

    /// <summary>
    /// A send whose answer never came (Redis paused past the command timeout) may or may not have been stored: the
    /// command waits in Redis and runs when the pause ends, unless the client library drops the connection first. The
    /// error says exactly that, and the room afterwards agrees with one of the two outcomes.
    /// </summary>
    [Test, CancelAfter(30_000)]
    public async Task A_send_Redis_does_not_answer_in_time_says_it_may_or_may_not_have_been_stored(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var host = new ChatHost($"{redis.ConnectionString},asyncTimeout=300", Unlimited);
        var room = TestNames.Room();
        await using var sender = await ChatClient.SignInAsync(host.WebSocketUri, "sender", room, cancellationToken);

        await AdminAsync(redis.ConnectionString, "CLIENT", "PAUSE", "3000", "WRITE");   // the append waits in Redis
        var ack = await sender.RequestAsync(new { type = "sendMessage", text = "in the dark" }, cancellationToken);
        Assert.That((ack.Ok, ack.Error), Is.EqualTo((false,
            "The message store did not answer; the message may or may not have been stored. Check the room's history before sending it again.")));

        Frame after = ack;
        await WaitUntilAsync(async () => (after = await sender.RequestAsync(new { type = "sendMessage", text = "after" }, cancellationToken)).Ok,
            cancellationToken);
        await using var reader = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        var history = await reader.RequestAsync(new { type = "signin", user = "reader", room }, cancellationToken);
        var expected = after.Seq == 2 ? new[] { "in the dark", "after" } : ["after"];   // stored once the pause ended, or never
        Assert.That(after.Seq, Is.InRange(1L, 2L));
        Assert.That(history.Messages.Select(m => m.Text), Is.EqualTo(expected), $"the next send got seq {after.Seq}");
    }

    /// <summary>
    /// Instances started while Redis is down run the same code as ever once it is up: they become ready, chat across
    /// instances, and ride out a killed subscription without a failed send.
    /// </summary>
    [Test, CancelAfter(60_000)]
    public async Task Instances_started_while_Redis_is_down_chat_as_usual_once_it_is_up(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        redis.Stop();
        await using var hostA = new ChatHost(redis.ConnectionString, Unlimited);
        await using var hostB = new ChatHost(redis.ConnectionString, Unlimited);
        Assert.That(await ReadyzAsync(hostA, cancellationToken), Is.EqualTo(HttpStatusCode.ServiceUnavailable));

        await redis.StartAgainAsync();
        await WaitReadyAsync(hostA, HttpStatusCode.OK, cancellationToken);
        await WaitReadyAsync(hostB, HttpStatusCode.OK, cancellationToken);
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken);
        Assert.That(await KillSubscribersAsync(redis.ConnectionString), Is.GreaterThan(0));
        for (var i = 1; i <= 3; i++)
        {
            var ack = await alice.RequestAsync(new { type = "sendMessage", text = $"m{i}" }, cancellationToken);
            Assert.That((ack.Ok, ack.Seq), Is.EqualTo((true, (long?)i)), ack.Raw);
        }

        var seen = new List<string?>();
        while (seen.Count < 3)
        {
            seen.Add((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text);
        }

        Assert.That(seen, Is.EqualTo(new[] { "m1", "m2", "m3" }), "delivered on the other instance, live or from history");
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

    /// <summary>
    /// Redis cuts off a subscriber that falls behind (<c>client-output-buffer-limit pubsub</c>), as <c>CLIENT KILL TYPE
    /// pubsub</c> does here, repeatedly, while both instances send: subscriptions and commands do not share a fate, so
    /// every send is acknowledged, and every listener on either instance gets every seq once, in order, what pub/sub
    /// dropped repaired from history.
    /// </summary>
    [Test, CancelAfter(60_000)]
    public async Task Killing_the_subscriptions_while_messages_flow_fails_no_send_and_every_listener_gets_every_seq_once(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var hostA = new ChatHost(redis.ConnectionString, Unlimited);
        await using var hostB = new ChatHost(redis.ConnectionString, Unlimited);
        var room = TestNames.Room();
        await using var listenerA = await ChatClient.SignInAsync(hostA.WebSocketUri, "listener-a", room, cancellationToken);
        await using var listenerB = await ChatClient.SignInAsync(hostB.WebSocketUri, "listener-b", room, cancellationToken);
        await using var senderA = await ChatClient.SignInAsync(hostA.WebSocketUri, "sender-a", room, cancellationToken);
        await using var senderB = await ChatClient.SignInAsync(hostB.WebSocketUri, "sender-b", room, cancellationToken);

        // Kill the subscriptions and send at once, round after round, until an instance had to repair a loss (a
        // message published before its subscription was back). Usually the first rounds do it; 50 bound the test.
        var acked = new List<long>();
        bool Repaired() => new[] { hostA, hostB }.Any(h => h.Logs.Contains("delivering them from history") || h.Logs.Contains("caught up"));
        for (var round = 0; round < 50 && (round < 5 || !Repaired()); round++)
        {
            Assert.That(await KillSubscribersAsync(redis.ConnectionString), Is.GreaterThan(0), "there was a subscription to kill");
            // The client library resubscribes within a millisecond or two on loopback, sometimes before the next
            // publish: keep killing while this round's messages go out, so some are published while it is down.
            using var sending = new CancellationTokenSource();
            var killing = KillSubscribersUntilAsync(redis.ConnectionString, sending.Token);
            for (var i = 0; i < 10; i++)
            {
                var sender = i % 2 == 0 ? senderA : senderB;
                var ack = await sender.RequestAsync(new { type = "sendMessage", text = $"r{round}-{i}" }, cancellationToken);
                Assert.That(ack.Ok, Is.True, $"a killed subscription must not fail a send: {ack.Raw}");
                acked.Add(ack.Seq!.Value);
            }

            await sending.CancelAsync();
            await killing;
        }

        Assert.That(acked, Is.EqualTo(Enumerable.Range(1, acked.Count).Select(n => (long)n)), "every send stored, numbered in turn");
        foreach (var client in new[] { listenerA, listenerB, senderA, senderB })
        {
            var seen = new List<long>();
            while (seen.Count == 0 || seen[^1] < acked[^1])
            {
                var frame = await client.NextAsync(cancellationToken);
                Assert.That(frame.Type, Is.Not.EqualTo("gap"), "history holds everything, so nothing may be reported lost");
                if (frame.Type == "message")
                {
                    seen.Add(frame.Seq!.Value);
                }
            }

            Assert.That(seen, Is.EqualTo(acked), "every message once, in order, no gap");
        }

        Assert.That(Repaired(), Is.True, "the fault really cost pub/sub messages that an instance then repaired");
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
