using System.Globalization;
using System.Text;
using ChatServer.History;
using ChatServer.Rooms;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.Webhooks;

/// <summary>
/// docs/API.md "Webhooks" against a receiver the test runs: two instances on the shared test Redis (or on the test Redis
/// Cluster, where a user's entries live in a slot of their own; or one instance in process), both posting to it. Each host delivers with one worker here, so its events leave in the order it queued them (when
/// none fails): a sentinel message sent after an action, once delivered, proves that whatever the action queued on that
/// host has arrived, which is how a test shows an event did not happen. Names are fresh per test (user names too, since
/// <c>user.offline</c> is per user).
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class WebhookTests(Backend backend)
{
    private readonly string _sentinelRoom = TestNames.Room("sentinel");
    private readonly Dictionary<ChatHost, ChatClient> _sentinels = [];
    private WebhookReceiver _receiver = null!;
    private ChatHost _hostA = null!;
    private ChatHost _hostB = null!;
    private string? _redis;

    /// <summary>One worker (events in order), quick retries, a one-second answer timeout, a short drain at shutdown.</summary>
    internal static Dictionary<string, string?> TestSettings => new()
    {
        ["Webhooks:Concurrency"] = "1",
        ["Webhooks:RetryDelay"] = "00:00:00.050",
        ["Webhooks:MaxRetryDelay"] = "00:00:00.200",
        ["Webhooks:Timeout"] = "00:00:01",
        ["Webhooks:DrainTimeout"] = "00:00:00.200",
    };

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _receiver = await WebhookReceiver.StartAsync();
        var settings = _receiver.Settings(TestSettings);
        _redis = backend switch
        {
            Backend.Redis => TestRedis.ConnectionString,
            Backend.Cluster => (await TestRedisCluster.GetAsync()).ConnectionString,
            _ => null,
        };
        if (backend == Backend.Cluster)
        {
            settings["Redis:PubSub"] = "Sharded";
        }

        _hostA = new ChatHost(_redis, settings);
        _hostB = _redis is null ? _hostA : new ChatHost(_redis, settings);
        foreach (var host in Hosts)
        {
            _sentinels[host] = await ChatClient.SignInAsync(host.WebSocketUri, "sentinel", _sentinelRoom, CancellationToken.None);
        }
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        foreach (var sentinel in _sentinels.Values)
        {
            await sentinel.DisposeAsync();
        }

        if (_hostB != _hostA)
        {
            await _hostB.DisposeAsync();
        }

        await _hostA.DisposeAsync();
        await _receiver.DisposeAsync();
    }

    private ChatHost[] Hosts => [.. new[] { _hostA, _hostB }.Distinct()];

    [Test, CancelAfter(30_000)]
    public async Task Every_event_type_arrives_with_its_fields_signed_with_the_secret(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var (alice, bob) = (User("alice"), User("bob"));
        var a = await ChatClient.SignInAsync(_hostA.WebSocketUri, alice, room, cancellationToken);
        var joined = await _receiver.WaitForAsync(r => r.Type == "user.joined" && r.User == alice && r.Room == room, cancellationToken);
        await using var b = await ChatClient.SignInAsync(_hostB.WebSocketUri, bob, room, cancellationToken);

        var keyed = await a.RequestAsync(new { type = "sendMessage", text = "hello \u00e9\"<", key = "k-1" }, cancellationToken);
        var message = await a.ExpectAsync(f => f.Type == "message" && f.User == alice, cancellationToken);
        var created = await _receiver.WaitForAsync(r => r.Type == "message.created" && r.Room == room && r.Seq == keyed.Seq, cancellationToken);
        var plain = await b.RequestAsync(new { type = "sendMessage", text = "plain" }, cancellationToken);
        var createdPlain = await _receiver.WaitForAsync(r => r.Type == "message.created" && r.Room == room && r.Seq == plain.Seq, cancellationToken);

        Assert.That((await a.RequestAsync(new { type = "deleteMessage", seq = message.Seq, epoch = message.Epoch }, cancellationToken)).Ok, Is.True);
        var deleted = await _receiver.WaitForAsync(r => r.Type == "message.deleted" && r.Room == room && r.Seq == message.Seq, cancellationToken);
        var outcome = await _hostB.Services.GetRequiredService<MessageDeleter>()
            .DeleteAsync(room, message.Epoch!, plain.Seq!.Value, author: null, DeletedBy.Api, cancellationToken);
        Assert.That(outcome, Is.EqualTo(DeleteOutcome.Deleted));
        var deletedByApi = await _receiver.WaitForAsync(r => r.Type == "message.deleted" && r.Room == room && r.Seq == plain.Seq, cancellationToken);

        await a.DisposeAsync();
        var left = await _receiver.WaitForAsync(r => r.Type == "user.left" && r.User == alice && r.Room == room, cancellationToken);
        var offline = await _receiver.WaitForAsync(r => r.Type == "user.offline" && r.User == alice, cancellationToken);
        var arrivals = _receiver.Requests.Select(r => r.Id).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(Fields(joined), Is.EqualTo(new Dictionary<string, object?> { ["room"] = room, ["user"] = alice }));
            Assert.That(Fields(created), Is.EqualTo(new Dictionary<string, object?>
            {
                ["room"] = room, ["user"] = alice, ["seq"] = message.Seq, ["epoch"] = message.Epoch, ["ts"] = message.Ts,
                ["text"] = "hello \u00e9\"<", ["key"] = "k-1",
            }));
            Assert.That(Fields(createdPlain), Is.EqualTo(new Dictionary<string, object?>
            {
                ["room"] = room, ["user"] = bob, ["seq"] = plain.Seq, ["epoch"] = message.Epoch, ["ts"] = createdPlain.Root.GetProperty("ts").GetString(),
                ["text"] = "plain",
            }), "no key field when sent without one");
            Assert.That(Fields(deleted), Is.EqualTo(new Dictionary<string, object?>
            {
                ["room"] = room, ["seq"] = message.Seq, ["epoch"] = message.Epoch, ["by"] = "author",
            }));
            Assert.That(Fields(deletedByApi), Is.EqualTo(new Dictionary<string, object?>
            {
                ["room"] = room, ["seq"] = plain.Seq, ["epoch"] = message.Epoch, ["by"] = "api",
            }));
            Assert.That(Fields(left), Is.EqualTo(new Dictionary<string, object?> { ["room"] = room, ["user"] = alice }));
            Assert.That(Fields(offline), Is.EqualTo(new Dictionary<string, object?> { ["user"] = alice }));
            Assert.That(arrivals.IndexOf(left.Id), Is.LessThan(arrivals.IndexOf(offline.Id)), "one close: user.left queued before user.offline");
            Assert.That(Encoding.UTF8.GetString(created.Body), Does.Contain("\"text\":\"hello \u00e9\\\"<\""), "text written as on the wire");

            var all = new[] { joined, created, createdPlain, deleted, deletedByApi, left, offline };
            Assert.That(all.Select(r => r.Type), Is.EqualTo(new[]
            {
                "user.joined", "message.created", "message.created", "message.deleted", "message.deleted", "user.left", "user.offline",
            }));
            foreach (var request in all)
            {
                Assert.That(request.SignatureMatches(WebhookReceiver.Secret), Is.True, $"signature of {request}");
                Assert.That(request.SignatureMatches(WebhookReceiver.Secret + "x"), Is.False, "another secret does not verify");
                Assert.That(request.Id, Does.Match("^evt_[0-9A-HJKMNP-TV-Z]{26}$"));
                Assert.That(request.Root.GetProperty("id").GetString(), Is.EqualTo(request.Id), "X-Chat-Event-Id is the body's id");
                Assert.That(request.ContentType, Is.EqualTo("application/json"));
                Assert.That(DateTimeOffset.FromUnixTimeSeconds(long.Parse(request.Timestamp, CultureInfo.InvariantCulture)),
                    Is.EqualTo(DateTimeOffset.UtcNow).Within(TimeSpan.FromMinutes(1)), "X-Chat-Timestamp is Unix seconds, now");
                Assert.That(request.Root.GetProperty("at").GetString(), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"));
            }

            Assert.That(all.Select(r => r.Id).Distinct().Count(), Is.EqualTo(all.Length));
            Assert.That(string.CompareOrdinal(joined.Id, created.Id), Is.Negative, "ids sort by time");
            Assert.That(string.CompareOrdinal(created.Id, offline.Id), Is.Negative, "ids sort by time");
        });
    }

    [Test, CancelAfter(30_000)]
    public async Task Each_event_is_delivered_once_by_one_instance_and_a_duplicate_send_is_no_event(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var (alice, bob) = (User("alice"), User("bob"));
        await using var a = await ChatClient.SignInAsync(_hostA.WebSocketUri, alice, room, cancellationToken);
        await using var b = await ChatClient.SignInAsync(_hostB.WebSocketUri, bob, room, cancellationToken);
        for (var i = 0; i < 10; i++)
        {
            Assert.That((await a.RequestAsync(new { type = "sendMessage", text = $"a{i}", key = $"key-{i}" }, cancellationToken)).Ok, Is.True);
            Assert.That((await b.RequestAsync(new { type = "sendMessage", text = $"b{i}" }, cancellationToken)).Ok, Is.True);
        }

        var resend = await a.RequestAsync(new { type = "sendMessage", text = "a0", key = "key-0" }, cancellationToken);
        Assert.That(resend.Root.GetProperty("duplicate").GetBoolean(), Is.True, resend.Raw);
        await SentinelsAsync(cancellationToken);   // all that either host queued so far has arrived

        var created = _receiver.Requests.Where(r => r.Type == "message.created" && r.Room == room).ToList();
        var joined = _receiver.Requests.Where(r => r.Type == "user.joined" && r.Room == room).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(created.Select(r => r.Seq).Order(), Is.EqualTo(Enumerable.Range(1, 20).Select(i => (long?)i)),
                "one request per stored message: none twice (one instance each), none for the duplicate");
            Assert.That(created.Select(r => r.Id).Distinct().Count(), Is.EqualTo(20));
            Assert.That(created.All(r => r.Status == 200));
            Assert.That(joined.Select(r => r.User).Order(StringComparer.Ordinal), Is.EqualTo(new[] { alice, bob }.Order(StringComparer.Ordinal)));
        });
    }

    [Test, CancelAfter(30_000)]
    public async Task A_failed_or_unanswered_attempt_is_retried_with_the_same_id_until_a_2xx(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var marker = $"retry me {Guid.NewGuid():N}";
        _receiver.AnswerFor(r => r.Text == marker, Answer.Fail, Answer.Fail, Answer.Hang);   // 500, 500, no answer in 1 s, then 200
        using var counters = new WebhookCounters(_hostA);
        await using var a = await ChatClient.SignInAsync(_hostA.WebSocketUri, User("alice"), room, cancellationToken);

        Assert.That((await a.RequestAsync(new { type = "sendMessage", text = marker }, cancellationToken)).Ok, Is.True);
        var delivered = await _receiver.WaitForAsync(r => r.Text == marker, cancellationToken);
        await counters.WaitForAsync("sent", 1, cancellationToken);

        var attempts = _receiver.Requests.Where(r => r.Text == marker).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(attempts.Select(r => r.Status), Is.EqualTo(new[] { 500, 500, 0, 200 }));
            Assert.That(attempts.Select(r => r.Id).Distinct(), Is.EqualTo(new[] { delivered.Id }), "every attempt carries the event's id");
            Assert.That(attempts.All(r => r.Body.SequenceEqual(delivered.Body)), Is.True, "the same body every time");
            Assert.That(attempts.All(r => r.SignatureMatches(WebhookReceiver.Secret)), Is.True, "each attempt signed afresh");
            Assert.That(_receiver.Delivered.Count(r => r.Text == marker), Is.EqualTo(1), "a receiver that dedupes by id sees it once");
            Assert.That(counters["retried"], Is.EqualTo(3));
            Assert.That(counters["dropped/max_age"] + counters["dropped/queue_full"], Is.Zero);
        });
    }

    [Test, CancelAfter(30_000)]
    public async Task User_offline_comes_once_when_the_users_last_connection_on_any_instance_and_room_closes(CancellationToken cancellationToken)
    {
        var (room1, room2) = (TestNames.Room(), TestNames.Room());
        var alice = User("alice");
        var onA = await ChatClient.SignInAsync(_hostA.WebSocketUri, alice, room1, cancellationToken);
        var onB = await ChatClient.SignInAsync(_hostB.WebSocketUri, alice, room1, cancellationToken);   // the other instance
        var otherRoom = await ChatClient.SignInAsync(_hostA.WebSocketUri, alice, room2, cancellationToken);
        if (_redis is not null)
        {
            var (entries, ttl) = await UserKeyAsync(alice);
            Assert.That(entries, Is.EqualTo(3), "one entry per (instance, room): A room 1, B room 1, A room 2");
            Assert.That(ttl, Is.Not.Null.And.GreaterThan(TimeSpan.Zero), "the user's key expires");
        }

        await onA.DisposeAsync();
        await SettledAsync(_hostA, room1, alice, stillOpen: OnBothIfInProcess(1), cancellationToken);
        await SentinelsAsync(cancellationToken);
        Assert.That(Delivered("user.offline", alice), Is.Zero, "alice is still on the other instance (and in another room)");
        Assert.That(Delivered("user.left", alice, room1), Is.Zero, "alice is still in room 1 on the other instance");

        await onB.DisposeAsync();
        await _receiver.WaitForAsync(r => r.Type == "user.left" && r.User == alice && r.Room == room1, cancellationToken);
        await SettledAsync(_hostB, room1, alice, stillOpen: 0, cancellationToken);
        await SentinelsAsync(cancellationToken);
        Assert.That(Delivered("user.offline", alice), Is.Zero, "alice is still in room 2");

        await otherRoom.DisposeAsync();
        await _receiver.WaitForAsync(r => r.Type == "user.offline" && r.User == alice, cancellationToken);
        await SentinelsAsync(cancellationToken);
        Assert.Multiple(() =>
        {
            Assert.That(Delivered("user.offline", alice), Is.EqualTo(1));
            Assert.That(Delivered("user.left", alice, room1), Is.EqualTo(1));
            Assert.That(Delivered("user.left", alice, room2), Is.EqualTo(1));
            Assert.That(Delivered("user.joined", alice, room1), Is.EqualTo(1), "one join across instances");
        });
        if (_redis is not null)
        {
            Assert.That(await UserKeyAsync(alice), Is.EqualTo((0L, (TimeSpan?)null)), "the key goes with its last entry");
        }
    }

    /// <summary>The entries and time to live of the user's key (<c>chat:user:{user}:rooms</c>), read from Redis.</summary>
    private async Task<(long Entries, TimeSpan? Ttl)> UserKeyAsync(string user)
    {
        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(_redis!);
        var key = $"chat:user:{{{user}}}:rooms";
        return (await redis.GetDatabase().SortedSetLengthAsync(key), await redis.GetDatabase().KeyTimeToLiveAsync(key));
    }

    [Test, CancelAfter(30_000)]
    public async Task User_joined_and_left_come_once_across_instances(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var alice = User("alice");
        var first = await ChatClient.SignInAsync(_hostA.WebSocketUri, alice, room, cancellationToken);
        var second = await ChatClient.SignInAsync(_hostB.WebSocketUri, alice, room, cancellationToken);
        var third = await ChatClient.SignInAsync(_hostB.WebSocketUri, alice, room, cancellationToken);
        await SentinelsAsync(cancellationToken);
        Assert.That(Delivered("user.joined", alice, room), Is.EqualTo(1));

        await first.DisposeAsync();
        await second.DisposeAsync();
        await SettledAsync(_hostA, room, alice, stillOpen: OnBothIfInProcess(1), cancellationToken);
        await SettledAsync(_hostB, room, alice, stillOpen: 1, cancellationToken);
        await SentinelsAsync(cancellationToken);
        Assert.That(Delivered("user.left", alice, room), Is.Zero, "a connection remains");

        await third.DisposeAsync();
        await _receiver.WaitForAsync(r => r.Type == "user.left" && r.User == alice && r.Room == room, cancellationToken);
        await SettledAsync(_hostB, room, alice, stillOpen: 0, cancellationToken);
        await SentinelsAsync(cancellationToken);
        Assert.Multiple(() =>
        {
            Assert.That(Delivered("user.left", alice, room), Is.EqualTo(1));
            Assert.That(Delivered("user.joined", alice, room), Is.EqualTo(1));
        });
    }

    /// <summary>A fresh user name (user.offline is per user, across every room and test).</summary>
    internal static string User(string hint) => $"{hint}-{Guid.NewGuid():N}"[..20];

    private int Delivered(string type, string user, string? room = null) =>
        _receiver.Delivered.Count(r => r.Type == type && r.User == user && (room is null || r.Room == room));

    /// <summary>
    /// Sends a message from each host's sentinel connection and waits for its <c>message.created</c>: one worker per
    /// host delivers in queue order, so everything each host had queued before has arrived.
    /// </summary>
    private async Task SentinelsAsync(CancellationToken cancellationToken)
    {
        foreach (var (_, sentinel) in _sentinels)
        {
            var text = $"sentinel {Guid.NewGuid():N}";
            Assert.That((await sentinel.RequestAsync(new { type = "sendMessage", text }, cancellationToken)).Ok, Is.True);
            await _receiver.WaitForAsync(r => r.Type == "message.created" && r.Text == text, cancellationToken);
        }
    }

    /// <summary>
    /// Waits until <paramref name="host"/> holds <paramref name="stillOpen"/> connections of <paramref name="user"/> in
    /// <paramref name="room"/> and no presence change of them is in flight: all that the closes made it queue is queued.
    /// </summary>
    private static async Task SettledAsync(ChatHost host, string room, string user, int stillOpen, CancellationToken cancellationToken)
    {
        var tracker = host.Services.GetRequiredService<PresenceTracker>();
        while (tracker.Held(room, user) != (stillOpen, false))
        {
            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>In process both hosts are one: connections "on the other host" are on this one.</summary>
    private int OnBothIfInProcess(int count) => backend == Backend.InProcess ? count : 0;

    /// <summary>The event's own fields (without id, type, at), as strings and numbers.</summary>
    internal static Dictionary<string, object?> Fields(WebhookRequest request) =>
        request.Root.EnumerateObject()
            .Where(p => p.Name is not ("id" or "type" or "at"))
            .ToDictionary(p => p.Name, p => p.Value.ValueKind == System.Text.Json.JsonValueKind.Number ? p.Value.GetInt64() : (object?)p.Value.GetString());
}
