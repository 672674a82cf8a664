using System.Globalization;
using StackExchange.Redis;

namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// The test Redis Cluster (three primaries, no replicas) as the store, checked node by node: with sharded pub/sub each
/// room's channel lives only on the shard owning the room's slot and its messages cross no other node; classic pub/sub
/// still works there, broadcast over the cluster bus. The v1 guarantees on the cluster are the protocol test classes'
/// <see cref="Backend.Cluster"/> runs.
/// </summary>
public sealed class ClusterTests
{
    private const int RoomCount = 30;

    [Test, CancelAfter(60_000)]
    public async Task Sharded_pub_sub_keeps_each_rooms_channel_and_traffic_on_the_shard_that_owns_the_room(CancellationToken cancellationToken)
    {
        var cluster = await TestRedisCluster.GetAsync().WaitAsync(cancellationToken);
        var settings = new Dictionary<string, string?> { ["Redis:PubSub"] = "Sharded" };
        await using var hostA = new ChatHost(cluster.ConnectionString, settings);
        await using var hostB = new ChatHost(cluster.ConnectionString, settings);
        await using var admin = await ConnectionMultiplexer.ConnectAsync($"{cluster.ConnectionString},allowAdmin=true");
        var nodes = cluster.Nodes.Select(n => admin.GetServer(n)).ToArray();
        var owned = await Task.WhenAll(nodes.Select(OwnSlotsAsync));

        // A member on each host in every room: both hosts subscribe every room's channel.
        var rooms = Enumerable.Range(0, RoomCount).Select(_ => TestNames.Room("shard")).ToArray();
        var members = new List<(ChatClient A, ChatClient B)>();
        try
        {
            foreach (var room in rooms)
            {
                members.Add((await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken),
                    await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken)));
            }

            var channelOf = rooms.ToDictionary(r => r, r => $"chat:{{{r}}}:messages");
            var ownerOf = new Dictionary<string, int>();
            foreach (var room in rooms)
            {
                var slot = (int)await nodes[0].ExecuteAsync("CLUSTER", "KEYSLOT", channelOf[room]);
                ownerOf[room] = Array.FindIndex(owned, ranges => Contains(ranges, slot));
            }

            Assert.That(Enumerable.Range(0, nodes.Length).Select(n => ownerOf.Values.Count(o => o == n)), Has.All.GreaterThan(0),
                "the rooms must land on every shard for this test to say anything");

            for (var n = 0; n < nodes.Length; n++)
            {
                var listed = ((RedisResult[])(await nodes[n].ExecuteAsync("PUBSUB", "SHARDCHANNELS"))!).Select(c => (string)c!).ToArray();
                foreach (var channel in listed)
                {
                    var slot = (int)await nodes[n].ExecuteAsync("CLUSTER", "KEYSLOT", channel);
                    Assert.That(Contains(owned[n], slot), Is.True, $"{cluster.Nodes.ElementAt(n)} carries {channel} (slot {slot}) it does not own");
                }

                var mine = rooms.Where(r => ownerOf[r] == n).Select(r => channelOf[r]);
                Assert.That(listed, Is.SupersetOf(mine), $"{cluster.Nodes.ElementAt(n)} lacks a channel of a room it owns");
                var classic = ((RedisResult[])(await nodes[n].ExecuteAsync("PUBSUB", "CHANNELS", "chat:*"))!).Select(c => (string)c!);
                Assert.That(classic, Is.Empty, "sharded mode must not subscribe any classic room channel");
            }

            // Traffic: messages to one room move bytes out of its own node only, and nothing crosses the cluster bus.
            var (target, (sender, listener)) = (rooms[0], members[0]);
            var owner = ownerOf[target];
            var before = await Task.WhenAll(nodes.Select(TrafficAsync));
            var text = new string('x', 1_800);
            for (var i = 0; i < 20; i++)
            {
                var ack = await sender.RequestAsync(new { type = "sendMessage", text = $"{i} {text}" }, cancellationToken);
                Assert.That(ack.Ok, Is.True, ack.Raw);
            }

            await listener.ExpectAsync(f => f.Type == "message" && f.Text == $"19 {text}", cancellationToken);
            await sender.ExpectAsync(f => f.Type == "message" && f.Text == $"19 {text}", cancellationToken);
            var after = await Task.WhenAll(nodes.Select(TrafficAsync));

            var output = Enumerable.Range(0, nodes.Length).Select(n => after[n].OutputBytes - before[n].OutputBytes).ToArray();
            var report = string.Join(", ", output.Select((b, n) => $"{cluster.Nodes.ElementAt(n)}{(n == owner ? " (owner)" : "")}: {b} bytes"));
            Assert.That(output[owner], Is.GreaterThan(2 * 20 * 1_800), $"two subscribers got 20 messages from the owner; {report}");
            for (var n = 0; n < nodes.Length; n++)
            {
                if (n != owner)
                {
                    Assert.That(output[n], Is.LessThan(output[owner] / 10), $"only the owner sends the room's messages; {report}");
                }

                Assert.That(after[n].BusPublishes, Is.EqualTo(before[n].BusPublishes), $"no publish crossed the cluster bus; {report}");
            }
        }
        finally
        {
            foreach (var (a, b) in members)
            {
                await a.DisposeAsync();
                await b.DisposeAsync();
            }
        }
    }

    [Test, CancelAfter(30_000)]
    public async Task Classic_pub_sub_on_the_cluster_delivers_across_instances_broadcast_over_the_bus(CancellationToken cancellationToken)
    {
        var cluster = await TestRedisCluster.GetAsync().WaitAsync(cancellationToken);
        var settings = new Dictionary<string, string?> { ["Redis:PubSub"] = "Classic" };
        await using var hostA = new ChatHost(cluster.ConnectionString, settings);
        await using var hostB = new ChatHost(cluster.ConnectionString, settings);
        await using var admin = await ConnectionMultiplexer.ConnectAsync($"{cluster.ConnectionString},allowAdmin=true");
        var nodes = cluster.Nodes.Select(n => admin.GetServer(n)).ToArray();
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken);
        await alice.ExpectAsync(f => f.Type == "notification" && f.User == "bob", cancellationToken);
        var before = await Task.WhenAll(nodes.Select(TrafficAsync));

        var ack = await alice.RequestAsync(new { type = "sendMessage", text = "hello over the bus" }, cancellationToken);

        Assert.That(ack.Ok, Is.True, ack.Raw);
        var message = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That((message.Room, message.User, message.Text, message.Seq), Is.EqualTo((room, "alice", "hello over the bus", 1L)));
        var after = await Task.WhenAll(nodes.Select(TrafficAsync));
        Assert.That(after.Sum(t => t.BusPublishes) - before.Sum(t => t.BusPublishes), Is.GreaterThan(0),
            "classic PUBLISH on a cluster goes to every node: the traffic sharded mode avoids");
    }

    /// <summary>The slot ranges this node serves, from its own line in <c>CLUSTER NODES</c>.</summary>
    private static async Task<(int From, int To)[]> OwnSlotsAsync(IServer node)
    {
        var text = (string)(await node.ExecuteAsync("CLUSTER", "NODES"))!;
        var fields = text.Split('\n').Single(line => line.Contains("myself", StringComparison.Ordinal)).Trim().Split(' ');
        return [.. fields.Skip(8).Where(f => !f.StartsWith('[')).Select(f => f.Split('-')).Select(r =>
            (int.Parse(r[0], CultureInfo.InvariantCulture), int.Parse(r[^1], CultureInfo.InvariantCulture)))];
    }

    private static bool Contains((int From, int To)[] ranges, int slot) => ranges.Any(r => slot >= r.From && slot <= r.To);

    /// <summary>Bytes the node sent to clients, and pub/sub messages it sent over the cluster bus (classic and sharded).</summary>
    private static async Task<(long OutputBytes, long BusPublishes)> TrafficAsync(IServer node)
    {
        var stats = (string)(await node.ExecuteAsync("INFO", "stats"))!;
        var cluster = (string)(await node.ExecuteAsync("CLUSTER", "INFO"))!;
        return (Field(stats, "total_net_output_bytes"),
            Field(cluster, "cluster_stats_messages_publish_sent") + Field(cluster, "cluster_stats_messages_publishshard_sent"));
    }

    /// <summary>A <c>name:value</c> line of an INFO-style reply; 0 when absent (Redis omits counters never used).</summary>
    private static long Field(string text, string name)
    {
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[(name.Length + 1)..].Trim(), CultureInfo.InvariantCulture);
    }
}
