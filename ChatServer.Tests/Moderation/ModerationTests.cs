using System.Net.WebSockets;
using ChatServer.Moderation;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.Moderation;

/// <summary>
/// Kicks, connection counts and bans (API.md) across two instances: what the server API's moderation endpoints do,
/// driven here through the services they call.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class ModerationTests(Backend backend) : TwoHostFixture(backend)
{
    [Test, CancelAfter(20_000)]
    public async Task A_kick_closes_the_users_connections_on_every_instance_with_4003_and_they_leave(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var bob = await ChatClient.SignInAsync(HostA.WebSocketUri, "bob", room, cancellationToken);
        await using var malloryA = await ChatClient.SignInAsync(HostA.WebSocketUri, "mallory", room, cancellationToken);
        await using var malloryB = await ChatClient.SignInAsync(HostB.WebSocketUri, "mallory", room, cancellationToken);
        await using var elsewhere = await ChatClient.SignInAsync(HostB.WebSocketUri, "mallory", TestNames.Room(), cancellationToken);

        var closed = await HostB.Services.GetRequiredService<IModerationBus>().KickAsync(room, "mallory", "spam");

        Assert.That(closed, Is.EqualTo(2));
        foreach (var kicked in new[] { malloryA, malloryB })
        {
            Assert.That(await kicked.WaitForCloseAsync(cancellationToken), Is.EqualTo((WebSocketCloseStatus)4003));
            Assert.That(kicked.CloseDescription, Is.EqualTo("spam"));
        }

        var left = await bob.ExpectAsync(f => f.Type == "notification" && f.Title == "Someone just left", cancellationToken);
        Assert.That(left.User, Is.EqualTo("mallory"));
        Assert.That((await elsewhere.RequestAsync(new { type = "members" }, cancellationToken)).Ok, Is.True, "another room is untouched");
    }

    [Test, CancelAfter(20_000)]
    public async Task Connections_are_counted_per_user_across_instances(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice1 = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var alice2 = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);

        var counts = await HostA.Services.GetRequiredService<IModerationBus>().ConnectionsAsync(room);

        Assert.That(counts, Is.EqualTo(new[] { new MemberConnections("alice", 2), new MemberConnections("bob", 1) }));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_ban_refuses_sign_in_on_every_instance_until_it_ends(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var until = DateTimeOffset.UtcNow.AddSeconds(3);
        await HostA.Services.GetRequiredService<IBanStore>().SetAsync(room, new Ban("mallory", until, "flooding"));

        foreach (var host in new[] { HostA, HostB })
        {
            await using var client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
            var refused = await client.RequestAsync(new { type = "signin", user = "mallory", room }, cancellationToken);
            var resumed = await client.RequestAsync(new { type = "updateSocketId", user = " mallory ", room }, cancellationToken);
            var sentence = $"You are banned from room '{room}' until {until.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: flooding.";
            Assert.That((refused.Ok, refused.Error), Is.EqualTo((false, sentence)));
            Assert.That((resumed.Ok, resumed.Error), Is.EqualTo((false, sentence)));
            Assert.That((await client.RequestAsync(new { type = "signin", user = "someone else", room }, cancellationToken)).Ok, Is.True);
        }

        var bans = await HostB.Services.GetRequiredService<IBanStore>().ListAsync(room);
        Assert.That(bans.Select(b => (b.User, b.Reason)), Is.EqualTo(new[] { ("mallory", (string?)"flooding") }));

        // After `until` the same sign-in works (polled: the ban's end is a time, not an event).
        await using var later = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        while (!(await later.RequestAsync(new { type = "signin", user = "mallory", room }, cancellationToken)).Ok)
        {
            await Task.Delay(200, cancellationToken);
        }

        Assert.That(DateTimeOffset.UtcNow, Is.GreaterThanOrEqualTo(until.AddMilliseconds(-100)));
        Assert.That(await HostA.Services.GetRequiredService<IBanStore>().ListAsync(room), Is.Empty);
    }
}

/// <summary>A stored ban outlives the instance that set it (Redis and the Cluster; in process, bans live as long as the process).</summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.Cluster)]
public sealed class StoredBanTests(Backend backend) : TwoHostFixture(backend)
{
    [Test, CancelAfter(30_000)]
    public async Task A_ban_without_end_holds_on_a_new_instance_until_lifted(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await HostA.Services.GetRequiredService<IBanStore>().SetAsync(room, new Ban("mallory", null, null));
        await using var restarted = Backend == Backend.Cluster
            ? new ChatHost((await TestRedisCluster.GetAsync()).ConnectionString, new Dictionary<string, string?> { ["Redis:PubSub"] = "Sharded" })
            : new ChatHost(TestRedis.ConnectionString);

        await using var client = await ChatClient.ConnectAsync(restarted.WebSocketUri, cancellationToken);
        var refused = await client.RequestAsync(new { type = "signin", user = "mallory", room }, cancellationToken);
        Assert.That(refused.Error, Is.EqualTo($"You are banned from room '{room}' until the ban is lifted."));

        await restarted.Services.GetRequiredService<IBanStore>().RemoveAsync(room, "mallory");
        Assert.That((await client.RequestAsync(new { type = "signin", user = "mallory", room }, cancellationToken)).Ok, Is.True);
    }
}
