using System.Text.RegularExpressions;
using ChatServer.Webhooks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ChatServer.Tests.Webhooks;

/// <summary>
/// The outbox's limits, each with hosts of its own: the bounded queue and its dropped counter, the age limit, the chat
/// going on while the receiver hangs, a dead instance's users announced by the instance that sweeps them, and the
/// settings (off without a URL; a URL without a secret refused).
/// </summary>
public sealed class WebhookLimitTests
{
    [Test, CancelAfter(30_000)]
    public async Task A_full_queue_drops_new_events_counts_and_logs_each_with_its_id(CancellationToken cancellationToken)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Hang();
        await using var host = new ChatHost(TestRedis.ConnectionString, receiver.Settings(new Dictionary<string, string?>(WebhookTests.TestSettings)
        {
            ["Webhooks:QueueCapacity"] = "3",
            ["Webhooks:Timeout"] = "00:01:00",   // the held request stays in flight for the whole test
        }));
        using var counters = new WebhookCounters(host);
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(host.WebSocketUri, WebhookTests.User("alice"), room, cancellationToken);   // user.joined: in flight, held

        for (var i = 1; i <= 6; i++)
        {
            Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = $"m{i}" }, cancellationToken)).Ok, Is.True);
        }

        // held: user.joined, m1, m2 (3 = capacity); dropped: m3 .. m6, each counted and logged with its id as it is refused
        var drops = host.Logs.Entries.Where(e => e.Level == LogLevel.Warning && e.Message.Contains("dropped: queue_full", StringComparison.Ordinal))
            .Select(e => e.Message).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(counters["dropped/queue_full"], Is.EqualTo(4));
            Assert.That(drops, Has.Count.EqualTo(4));
            Assert.That(drops, Has.All.Matches<string>(d => Regex.IsMatch(d, @"^Webhook event evt_[0-9A-Z]{26} \(message\.created\) dropped: queue_full\.$")));
            Assert.That(drops.Distinct().Count(), Is.EqualTo(4), "four different ids");
            Assert.That(host.Services.GetRequiredService<WebhookOutbox>().Pending, Is.EqualTo(3));
        });

        receiver.Release();
        await counters.WaitForAsync("sent", 3, cancellationToken);
        var delivered = receiver.Delivered.Where(r => r.Room == room).ToList();
        Assert.That(delivered.Select(r => r.Type == "message.created" ? r.Text : r.Type),
            Is.EquivalentTo(new[] { "user.joined", "m1", "m2" }), "what was held is delivered once the receiver answers");
        Assert.That(drops.Any(d => delivered.Any(r => d.Contains(r.Id, StringComparison.Ordinal))), Is.False, "a dropped id never arrives");
    }

    [Test, CancelAfter(30_000)]
    public async Task The_chat_goes_on_while_the_receiver_hangs(CancellationToken cancellationToken)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Hang();
        await using var hostA = new ChatHost(TestRedis.ConnectionString, receiver.Settings(new Dictionary<string, string?>(WebhookTests.TestSettings)
        {
            ["Webhooks:QueueCapacity"] = "5",
            ["Webhooks:Timeout"] = "00:01:00",
        }));
        await using var hostB = new ChatHost(TestRedis.ConnectionString, receiver.Settings(WebhookTests.TestSettings));
        using var counters = new WebhookCounters(hostA);
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, WebhookTests.User("alice"), room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, WebhookTests.User("bob"), room, cancellationToken);

        // Every send is acked and reaches the other instance's member while no webhook is answered and the queue is full.
        for (var i = 0; i < 30; i++)
        {
            var ack = await alice.RequestAsync(new { type = "sendMessage", text = $"m{i}" }, cancellationToken);
            Assert.That(ack.Ok, Is.True, ack.Raw);
            Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo($"m{i}"));
        }

        await using var carol = await ChatClient.SignInAsync(hostA.WebSocketUri, WebhookTests.User("carol"), room, cancellationToken);
        Assert.That((await carol.RequestAsync(new { type = "members" }, cancellationToken)).Ok, Is.True);
        Assert.That(counters["dropped/queue_full"], Is.GreaterThan(0), "the queue was full meanwhile");
        Assert.That(receiver.Delivered, Is.Empty, "nothing was answered");
    }

    [Test, CancelAfter(30_000)]
    public async Task An_event_failing_for_longer_than_MaxAge_is_dropped_counted_and_logged(CancellationToken cancellationToken)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var marker = $"never {Guid.NewGuid():N}";
        receiver.AnswerFor(r => r.Text == marker, [.. Enumerable.Repeat(Answer.Fail, 1_000)]);
        await using var host = new ChatHost(null, receiver.Settings(new Dictionary<string, string?>(WebhookTests.TestSettings)
        {
            ["Webhooks:MaxAge"] = "00:00:01",
        }));
        using var counters = new WebhookCounters(host);
        await using var alice = await ChatClient.SignInAsync(host.WebSocketUri, WebhookTests.User("alice"), TestNames.Room(), cancellationToken);

        Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = marker }, cancellationToken)).Ok, Is.True);
        await counters.WaitForAsync("dropped/max_age", 1, cancellationToken);

        var attempts = receiver.Requests.Where(r => r.Text == marker).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(attempts, Has.Count.GreaterThanOrEqualTo(3), "retried meanwhile");
            Assert.That(attempts.All(r => r.Status == 500));
            Assert.That(attempts.Select(r => r.Id).Distinct().Count(), Is.EqualTo(1));
            Assert.That(host.Logs.Contains($"Webhook event {attempts[0].Id} (message.created) dropped: max_age."), Is.True);
            Assert.That(counters["retried"], Is.EqualTo(attempts.Count - 1), "every failed attempt but the last was retried");
        });
    }

    [Test, CancelAfter(60_000)]
    public async Task A_killed_instances_user_is_announced_left_and_offline_once_by_the_instance_that_sweeps_it(CancellationToken cancellationToken)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var room = TestNames.Room();
        var (alice, bob) = (WebhookTests.User("alice"), WebhookTests.User("bob"));
        using var doomed = await ChatProcess.StartAsync(TestRedis.ConnectionString, cancellationToken, new Dictionary<string, string>
        {
            ["Chat__PresenceTtl"] = "00:00:02",
            ["Webhooks__Url"] = receiver.Url.ToString(),
            ["Webhooks__Secret"] = WebhookReceiver.Secret,
        });
        await using var survivor = new ChatHost(TestRedis.ConnectionString,
            receiver.Settings(new Dictionary<string, string?>(WebhookTests.TestSettings) { ["Chat:PresenceTtl"] = "00:00:02" }));
        await using var bobClient = await ChatClient.SignInAsync(survivor.WebSocketUri, bob, room, cancellationToken);
        var aliceClient = await ChatClient.SignInAsync(doomed.WebSocketUri, alice, room, cancellationToken);
        await receiver.WaitForAsync(r => r.Type == "user.joined" && r.User == alice && r.Room == room, cancellationToken);

        doomed.Kill();   // no leaves: its entries expire, and the survivor's refresh sweeps them
        await aliceClient.DisposeAsync();

        var left = await receiver.WaitForAsync(r => r.Type == "user.left" && r.User == alice && r.Room == room, cancellationToken);
        var offline = await receiver.WaitForAsync(r => r.Type == "user.offline" && r.User == alice, cancellationToken);
        var text = $"sentinel {Guid.NewGuid():N}";   // the survivor's one worker: all it queued before this has arrived
        await bobClient.RequestAsync(new { type = "sendMessage", text }, cancellationToken);
        await receiver.WaitForAsync(r => r.Text == text, cancellationToken);
        Assert.Multiple(() =>
        {
            Assert.That(receiver.Delivered.Count(r => r.Type == "user.offline" && r.User == alice), Is.EqualTo(1));
            Assert.That(receiver.Delivered.Count(r => r.Type == "user.left" && r.User == alice && r.Room == room), Is.EqualTo(1));
            Assert.That(left.SignatureMatches(WebhookReceiver.Secret) && offline.SignatureMatches(WebhookReceiver.Secret), Is.True);
        });
    }

    [Test, CancelAfter(30_000)]
    public async Task An_instance_that_stops_delivers_its_users_leaves_before_it_exits(CancellationToken cancellationToken)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (room, alice) = (TestNames.Room(), WebhookTests.User("alice"));
        // The leaves fail twice, each retry ~0.3 s later: still held when the server has stopped, so only the drain delivers them.
        receiver.AnswerFor(r => r.User == alice && r.Type is "user.left" or "user.offline", Answer.Fail, Answer.Fail);
        var host = new ChatHost(TestRedis.ConnectionString, receiver.Settings(new Dictionary<string, string?>(WebhookTests.TestSettings)
        {
            ["Webhooks:RetryDelay"] = "00:00:00.400",
            ["Webhooks:MaxRetryDelay"] = "00:00:00.400",
            ["Webhooks:DrainTimeout"] = "00:00:10",
        }));
        await using var client = await ChatClient.SignInAsync(host.WebSocketUri, alice, room, cancellationToken);
        await receiver.WaitForAsync(r => r.Type == "user.joined" && r.User == alice, cancellationToken);

        await host.DisposeAsync();   // the connection is closed with 1012 (its leave queued), then the outbox drains

        Assert.That(receiver.Delivered.Where(r => r.User == alice).Select(r => r.Type),
            Is.EquivalentTo(new[] { "user.joined", "user.left", "user.offline" }), "delivered before the host finished stopping");
        Assert.That(receiver.Requests.Count(r => r.User == alice && r.Status == 500), Is.EqualTo(4), "after two failures each");
    }

    [Test, CancelAfter(30_000)]
    public async Task Webhooks_are_off_without_a_url_and_a_url_without_a_secret_stops_the_start(CancellationToken cancellationToken)
    {
        await using (var host = new ChatHost(null))
        {
            Assert.That(host.Services.GetService<WebhookOutbox>(), Is.Null);
            await using var alice = await ChatClient.SignInAsync(host.WebSocketUri, "alice", TestNames.Room(), cancellationToken);
            Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = "hi" }, cancellationToken)).Ok, Is.True);
        }

        var refused = Assert.Throws<OptionsValidationException>(() => _ = new ChatHost(null, new Dictionary<string, string?>
        {
            ["Webhooks:Url"] = "http://127.0.0.1:9/hooks",
        }));
        Assert.That(refused!.Message, Does.Contain("Webhooks:Secret must be set when Webhooks:Url is"));
    }
}
