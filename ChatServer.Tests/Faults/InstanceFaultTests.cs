using System.Net.WebSockets;
using static ChatServer.Tests.Faults.FaultHelpers;

namespace ChatServer.Tests.Faults;

/// <summary>Instances that die or whose clients go silent.</summary>
public sealed class InstanceFaultTests
{
    [Test, CancelAfter(60_000)]
    public async Task Clients_of_a_killed_instance_recover_on_the_other_and_nothing_is_left_stuck(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        using var doomed = await ChatProcess.StartAsync(TestRedis.ConnectionString, cancellationToken);
        await using var survivor = new ChatHost(TestRedis.ConnectionString);
        await using var bob = await ChatClient.SignInAsync(survivor.WebSocketUri, "bob", room, cancellationToken);
        var alice = await ChatClient.SignInAsync(doomed.WebSocketUri, "alice", room, cancellationToken);
        await bob.RequestAsync(new { type = "sendMessage", text = "one" }, cancellationToken);
        var seen = await alice.ExpectAsync(f => f.Type == "message", cancellationToken);
        var channel = $"chat:{{{room}}}:messages";
        Assert.That(await SubscribersAsync(channel), Is.EqualTo(2), "both instances serve the room");

        doomed.Kill();   // SIGKILL: no 1012, no leave notification, no UNSUBSCRIBE
        Assert.That(await alice.WaitForCloseAsync(cancellationToken), Is.Null, "the socket just died");
        await alice.DisposeAsync();

        for (var i = 2; i <= 4; i++)
        {
            Assert.That((await bob.RequestAsync(new { type = "sendMessage", text = $"m{i}" }, cancellationToken)).Ok, Is.True);
        }

        // Alice reconnects through the load balancer to the surviving instance and takes her session up again.
        await using var back = await ChatClient.ConnectAsync(survivor.WebSocketUri, cancellationToken);
        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = seen.Seq, epoch = seen.Epoch }, cancellationToken);
        Assert.That(ack.Recovered, Is.True, ack.Raw);
        Assert.That(ack.Messages.Select(m => m.Text), Is.EqualTo(new[] { "m2", "m3", "m4" }));

        // Nothing of the dead instance lingers: Redis dropped its subscription with its socket, and the room flows.
        Assert.That(await SubscribersAsync(channel), Is.EqualTo(1));
        await back.RequestAsync(new { type = "sendMessage", text = "still here" }, cancellationToken);
        Assert.That((await bob.ExpectAsync(f => f.Type == "message" && f.User == "alice", cancellationToken)).Text, Is.EqualTo("still here"));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_connection_that_stops_answering_pings_is_dropped_from_its_room_with_a_leave_notification(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(TestRedis.ConnectionString, new Dictionary<string, string?>
        {
            ["Chat:KeepAlive"] = "00:00:01",
            ["Chat:CloseTimeout"] = "00:00:00.500",
        });
        var room = TestNames.Room();
        await using var watcher = await ChatClient.SignInAsync(host.WebSocketUri, "watcher", room, cancellationToken);

        // A client that never reads never answers the server's pings: from the server's side, a half-open peer.
        await using var silent = await ChatClient.ConnectWithoutReadingAsync(host.WebSocketUri, cancellationToken);
        await silent.SendAsync(new { type = "signin", id = 1, user = "silent", room }, cancellationToken);
        await watcher.ExpectAsync(f => f.Type == "notification" && f.Title == "Someone's here", cancellationToken);

        var left = await watcher.ExpectAsync(f => f.Type == "notification", cancellationToken);

        Assert.That((left.User, left.Title), Is.EqualTo(("silent", "Someone just left")));
        Assert.That(silent.State, Is.Not.EqualTo(WebSocketState.Closed), "the client did nothing: the server decided");
    }

    [Test, CancelAfter(60_000)]
    public async Task Users_of_a_killed_instance_drop_out_of_presence_within_the_ttl_with_leave_notifications(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        using var doomed = await ChatProcess.StartAsync(TestRedis.ConnectionString, cancellationToken,
            new Dictionary<string, string> { ["Chat__PresenceTtl"] = "00:00:02" });
        await using var survivor = new ChatHost(TestRedis.ConnectionString, new Dictionary<string, string?> { ["Chat:PresenceTtl"] = "00:00:02" });
        await using var bob = await ChatClient.SignInAsync(survivor.WebSocketUri, "bob", room, cancellationToken, presence: true);
        var alice = await ChatClient.SignInAsync(doomed.WebSocketUri, "alice", room, cancellationToken);
        await bob.ExpectAsync(f => f.Type == "presence" && f.User == "alice", cancellationToken);

        doomed.Kill();
        await alice.DisposeAsync();

        // Within the TTL plus one refresh (2 s + 0.7 s here; 30 s + 10 s by default), the survivor's refresh sweeps.
        var gone = await bob.ExpectAsync(f => f.Type == "presence" && f.User == "alice", cancellationToken);
        Assert.That(gone.Root.GetProperty("present").GetBoolean(), Is.False);
        var left = await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);
        Assert.That((left.User, left.Title), Is.EqualTo(("alice", "Someone just left")));
        var members = await bob.RequestAsync(new { type = "members" }, cancellationToken);
        Assert.That(members.Root.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "bob" }));
    }

    private static async Task<long> SubscribersAsync(string channel)
    {
        var result = (StackExchange.Redis.RedisResult[])(await AdminAsync(TestRedis.ConnectionString, "PUBSUB", "NUMSUB", channel))!;
        return (long)result[1];
    }
}
