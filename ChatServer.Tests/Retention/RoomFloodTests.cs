using ChatServer.Rooms;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.Retention;

/// <summary>
/// Issue 12, part 3: clients signing in to hundreds of distinct rooms and leaving leave nothing behind in the process
/// (feeds, subscriptions, presence bookkeeping, in-process channels and presence sets; the in-process log at most
/// <c>Chat:MaxInProcessRooms</c>) nor in Redis (no subscribed channel, no presence key, every room key with a TTL).
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class RoomFloodTests(Backend backend) : TwoHostFixture(backend)
{
    private const int Cap = 50;
    private const int Clients = 4;
    private const int RoomsEach = 75;   // 300 distinct rooms, six times the cap
    private readonly string _prefix = $"flood-{Guid.NewGuid():N}:";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Chat:MaxInProcessRooms"] = Cap.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Redis:KeyPrefix"] = _prefix,
        ["Chat:RateLimitPerSecond"] = "1000",
        ["Chat:RateLimitBurst"] = "1000",
    };

    [Test, CancelAfter(60_000)]
    public async Task Rooms_visited_and_left_release_everything_the_instances_hold(CancellationToken cancellationToken)
    {
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async c =>
        {
            // one connection walks through its rooms (each sign-in moves it), sending one message in some
            await using var client = await ChatClient.ConnectAsync((c % 2 == 0 ? HostA : HostB).WebSocketUri, cancellationToken);
            for (var i = 0; i < RoomsEach; i++)
            {
                var ack = await client.RequestAsync(new { type = "signin", user = $"u{c}", room = TestNames.Room("flood") }, cancellationToken);
                Assert.That(ack.Ok, Is.True, ack.Raw);
                if (i % 5 == 0)
                {
                    Assert.That((await client.RequestAsync(new { type = "sendMessage", text = "x" }, cancellationToken)).Ok, Is.True);
                }
            }
        }));

        foreach (var host in new[] { HostA, HostB }.Distinct())
        {
            var registry = host.Services.GetRequiredService<RoomRegistry>();
            var tracker = host.Services.GetRequiredService<PresenceTracker>();
            await WaitUntilAsync(() => registry.RoomCount == 0 && tracker.SlotCount == 0, cancellationToken);
            if (Backend == Backend.InProcess)
            {
                Assert.Multiple(() =>
                {
                    Assert.That(host.Services.GetRequiredService<InMemoryRoomChannel>().RoomCount, Is.Zero, "channels");
                    Assert.That(((InMemoryPresenceStore)host.Services.GetRequiredService<IPresenceStore>()).RoomCount, Is.Zero, "presence sets");
                    Assert.That(((InMemoryMessageLog)host.Services.GetRequiredService<IMessageLog>()).RoomCount, Is.InRange(1, Cap), "logs");
                });
            }
        }

        if (Backend != Backend.InProcess)
        {
            // Only the instances' own moderation channel stays (one per instance, not per room).
            Assert.That((await RedisKeysProbe.ChannelsAsync(Backend, _prefix)).Where(c => !c.EndsWith("{control}:commands", StringComparison.Ordinal)),
                Is.Empty, "no room channel subscribed");
            var keys = await RedisKeysProbe.KeysAsync(Backend, _prefix);
            Assert.That(keys.Where(k => !k.Key.EndsWith(":meta", StringComparison.Ordinal) && !k.Key.EndsWith(":history", StringComparison.Ordinal)),
                Is.Empty, "presence keys go with their last entry");
            Assert.That(keys.Where(k => k.Ttl is null), Is.Empty, "every room key expires");
            Assert.That(keys.Count(k => k.Key.EndsWith(":meta", StringComparison.Ordinal)), Is.EqualTo(Clients * RoomsEach));
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
        {
            await Task.Delay(50, cancellationToken);
        }
    }
}
