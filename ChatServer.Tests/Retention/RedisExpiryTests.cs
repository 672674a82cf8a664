using System.Globalization;

namespace ChatServer.Tests.Retention;

/// <summary>
/// "Every key the server creates in Redis carries an expiry" (PROTOCOL.md "Retention"): after sign-ins, messages,
/// history pages and leaves under a prefix of its own, every key under it has a TTL, the room's within
/// <c>Chat:HistoryTtl</c>; with <c>00:00:00</c> the room's keys have none (kept forever) and presence keys still do.
/// </summary>
[TestFixture(Backend.Redis, "00:01:00")]
[TestFixture(Backend.Cluster, "00:01:00")]
[TestFixture(Backend.Redis, "00:00:00")]
[TestFixture(Backend.Cluster, "00:00:00")]
public sealed class RedisExpiryTests(Backend backend, string historyTtl) : TwoHostFixture(backend)
{
    private readonly string _prefix = $"exp-{Guid.NewGuid():N}:";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Chat:HistoryTtl"] = historyTtl,
        ["Redis:KeyPrefix"] = _prefix,
    };

    private TimeSpan Ttl => TimeSpan.Parse(historyTtl, CultureInfo.InvariantCulture);

    [Test, CancelAfter(20_000)]
    public async Task Every_key_the_server_writes_carries_an_expiry_while_members_are_in_and_after_they_left(CancellationToken cancellationToken)
    {
        var rooms = Enumerable.Range(0, 6).Select(_ => TestNames.Room()).ToArray();   // spread over the Cluster's shards
        var clients = new List<ChatClient>();
        foreach (var room in rooms)
        {
            var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
            var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken, presence: true);
            clients.AddRange([alice, bob]);
            Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = "hi" }, cancellationToken)).Ok, Is.True);
        }

        var read = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        await read.RequestAsync(new { type = "signin", user = "reader", room = TestNames.Room("read-only") }, cancellationToken);
        clients.Add(read);

        var keys = await RedisKeysProbe.KeysAsync(Backend, _prefix);
        Assert.That(keys.Select(k => k.Key.Split(':')[^1]).Distinct(), Is.SupersetOf(new[] { "meta", "history", "presence", "users" }),
            string.Join(", ", keys.Select(k => k.Key)));
        AssertExpiries(keys);

        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }

        await WaitUntilAsync(async () => !(await RedisKeysProbe.KeysAsync(Backend, _prefix)).Any(k => k.Key.EndsWith(":presence", StringComparison.Ordinal)
            || k.Key.EndsWith(":users", StringComparison.Ordinal)), cancellationToken);
        var after = await RedisKeysProbe.KeysAsync(Backend, _prefix);
        Assert.That(after, Is.Not.Empty, "the rooms' history stays for the TTL");
        AssertExpiries(after);
    }

    [Test, CancelAfter(20_000)]
    public async Task A_join_and_a_message_renew_the_rooms_expiry_or_with_zero_remove_it(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = "hi" }, cancellationToken)).Ok, Is.True);
        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(await RedisKeysProbe.ConnectionStringAsync(Backend));
        var database = redis.GetDatabase();
        var roomKeys = (await RedisKeysProbe.KeysAsync(Backend, _prefix)).Select(k => k.Key)
            .Where(k => k.Contains(room, StringComparison.Ordinal) && (k.EndsWith(":meta", StringComparison.Ordinal) || k.EndsWith(":history", StringComparison.Ordinal)))
            .ToArray();
        Assert.That(roomKeys, Has.Length.EqualTo(2));

        async Task ShortenAsync()
        {
            foreach (var key in roomKeys)
            {
                await database.KeyExpireAsync(key, TimeSpan.FromSeconds(5));
            }
        }

        async Task AssertRenewedAsync(string by)
        {
            foreach (var key in roomKeys)
            {
                var ttl = await database.KeyTimeToLiveAsync(key);
                if (Ttl == TimeSpan.Zero)
                {
                    Assert.That(ttl, Is.Null, $"{key} after {by}: kept forever again (an expiry from an earlier setting is removed)");
                }
                else
                {
                    Assert.That(ttl, Is.GreaterThan(TimeSpan.FromSeconds(5)).And.LessThanOrEqualTo(Ttl), $"{key} after {by}");
                }
            }
        }

        await ShortenAsync();
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        await AssertRenewedAsync("a join");
        await ShortenAsync();
        Assert.That((await bob.RequestAsync(new { type = "sendMessage", text = "hello" }, cancellationToken)).Ok, Is.True);
        await AssertRenewedAsync("a message");
    }

    private void AssertExpiries(IReadOnlyList<(string Key, TimeSpan? Ttl)> keys)
    {
        Assert.Multiple(() =>
        {
            foreach (var (key, ttl) in keys)
            {
                var isRoom = key.EndsWith(":meta", StringComparison.Ordinal) || key.EndsWith(":history", StringComparison.Ordinal);
                if (isRoom && Ttl == TimeSpan.Zero)
                {
                    Assert.That(ttl, Is.Null, $"{key}: kept forever with HistoryTtl 00:00:00");
                }
                else
                {
                    var bound = isRoom ? Ttl : TimeSpan.FromSeconds(60);   // presence: its entries' expiry (30 s) + the same grace
                    Assert.That(ttl, Is.Not.Null.And.GreaterThan(TimeSpan.Zero).And.LessThanOrEqualTo(bound), key);
                }
            }
        });
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        while (!await condition())
        {
            await Task.Delay(100, cancellationToken);
        }
    }
}
