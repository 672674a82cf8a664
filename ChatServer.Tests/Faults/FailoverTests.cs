using System.Globalization;
using System.Net;
using static ChatServer.Tests.Faults.FaultHelpers;

namespace ChatServer.Tests.Faults;

/// <summary>
/// An asynchronously replicated Redis fails over behind the same endpoint (as Memorystore Standard does): a primary
/// and a replica (<c>--replicaof</c>) of the test's own, one TCP proxy in front of them, two instances that know only
/// the proxy. Replication is cut before the last few writes, so the promoted replica has a lower <c>seq</c> under the
/// same <c>epoch</c> than what every member has already been given.
/// </summary>
public sealed class FailoverTests
{
    private static readonly Dictionary<string, string?> Unlimited = new()
    {
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
    };

    [Test, CancelAfter(120_000)]
    public async Task Failover_to_a_replica_that_lost_the_tail_reuses_no_seq_and_members_get_every_later_message_once(
        CancellationToken cancellationToken)
    {
        using var primary = await RedisServerProcess.StartAsync();
        using var replica = await RedisServerProcess.StartAsync(0,
            "--replicaof", "127.0.0.1", primary.Port.ToString(CultureInfo.InvariantCulture));
        await WaitUntilAsync(async () => ((string?)await AdminAsync(replica.ConnectionString, "INFO", "replication"))!
            .Contains("master_link_status:up", StringComparison.Ordinal), cancellationToken);
        await using var proxy = new TcpProxy(primary.Port);
        await using var hostA = new ChatHost(proxy.ConnectionString, Unlimited);
        await using var hostB = new ChatHost(proxy.ConnectionString, Unlimited);
        var room = TestNames.Room("failover");
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken);
        var seen = new Dictionary<ChatClient, List<Frame>> { [alice] = [], [bob] = [] };

        // Five messages reach the replica; then replication is cut, and three more reach the primary alone.
        for (var i = 1; i <= 5; i++)
        {
            await SendAsync(i % 2 == 0 ? bob : alice, $"replicated{i}", cancellationToken);
        }

        await ReadUntilTextAsync(seen, "replicated5", cancellationToken);
        Assert.That((long)await AdminAsync(primary.ConnectionString, "WAIT", 1, 10_000), Is.EqualTo(1L), "the replica has the first five");
        await AdminAsync(replica.ConnectionString, "REPLICAOF", "NO", "ONE");
        for (var i = 1; i <= 3; i++)
        {
            await SendAsync(i % 2 == 0 ? bob : alice, $"lost{i}", cancellationToken);
        }

        await ReadUntilTextAsync(seen, "lost3", cancellationToken);
        var before = seen[alice].Last(f => f.Type == "message");
        Assert.That(before.Seq, Is.EqualTo(8L), before.Raw);
        var frameCountBefore = seen.ToDictionary(kv => kv.Key, kv => kv.Value.Count);

        // The failover: the primary dies, the endpoint now leads to the promoted replica, every connection is reset.
        primary.Stop();
        proxy.SwitchTo(replica.Port);
        proxy.DropAll();
        await WaitReadyAsync(hostA, HttpStatusCode.OK, cancellationToken);
        await WaitReadyAsync(hostB, HttpStatusCode.OK, cancellationToken);

        string[] after = ["after1", "after2", "after3", "after4"];
        for (var i = 0; i < after.Length; i++)
        {
            await SendAsync(i % 2 == 0 ? bob : alice, after[i], cancellationToken);
        }

        await ReadUntilTextAsync(seen, after[^1], cancellationToken);

        // A newcomer's history, and a client resuming from where everyone was before the failover.
        await using var carol = await ChatClient.ConnectAsync(hostB.WebSocketUri, cancellationToken);
        // Retried like the sends: right after a failover a connection of the instance may still be coming back (a
        // failed join changes nothing and says "try again").
        var history = await RequestStoredAsync(carol, new { type = "signin", user = "carol", room }, cancellationToken);
        await using var dave = await ChatClient.ConnectAsync(hostA.WebSocketUri, cancellationToken);
        var resumed = await RequestStoredAsync(dave,
            new { type = "updateSocketId", user = "dave", room, since = before.Seq, epoch = before.Epoch }, cancellationToken);
        Assert.That((history.Ok, resumed.Ok), Is.EqualTo((true, true)), $"{history.Raw}\n{resumed.Raw}");

        // (a) No (epoch, seq) names two different messages, whoever saw them and however.
        var byPosition = new Dictionary<(string?, long?), string?>();
        var everything = seen.Values.SelectMany(frames => frames.Where(f => f.Type == "message"))
            .Concat(history.Messages).Concat(resumed.Messages);
        foreach (var message in everything)
        {
            if (byPosition.TryGetValue((message.Epoch, message.Seq), out var text))
            {
                Assert.That(message.Text, Is.EqualTo(text), $"({message.Epoch}, {message.Seq}) was handed out twice");
            }
            else
            {
                byPosition[(message.Epoch, message.Seq)] = message.Text;
            }
        }

        // (b) Members that stayed connected: a gap notice for what was lost, then every later message once, in order.
        foreach (var (client, frames) in seen)
        {
            var later = frames.Skip(frameCountBefore[client]).Where(f => f.Type is "message" or "gap").ToList();
            var name = client == alice ? "alice" : "bob";
            Assert.That(later.Where(f => f.Type == "message").Select(f => f.Text), Is.EqualTo(after),
                $"{name} after the failover:\n{string.Join('\n', later)}");
            Assert.That(later.First().Type, Is.EqualTo("gap"), $"{name} is told before the next message");
            Assert.That(later.First().Recovered, Is.False);
            var positions = later.Where(f => f.Type == "message").Select(f => (f.Epoch, f.Seq)).ToList();
            Assert.That(positions.Select(p => p.Epoch).Distinct().Count(), Is.EqualTo(1), "one generation after the failover");
            Assert.That(positions.Select(p => p.Seq), Is.Ordered.Ascending.And.Unique);
        }

        // The newcomer's history agrees with what the members saw after the failover.
        var alicesLater = seen[alice].Skip(frameCountBefore[alice]).Where(f => f.Type == "message")
            .Select(f => (f.Epoch, f.Seq, f.Text)).ToList();
        Assert.That(history.Messages.Where(m => m.Epoch == alicesLater[0].Epoch).Select(m => (m.Epoch, m.Seq, m.Text)),
            Is.EqualTo(alicesLater), history.Raw);
        Assert.That(history.Messages.Select(m => m.Text).TakeLast(after.Length), Is.EqualTo(after), history.Raw);

        // (c) Resuming from a position the store no longer has is not "recovered", and gets the current history.
        Assert.That(resumed.Recovered, Is.False, resumed.Raw);
        Assert.That(resumed.Messages.Select(m => (m.Epoch, m.Seq, m.Text)), Is.EqualTo(history.Messages.Select(m => (m.Epoch, m.Seq, m.Text))),
            resumed.Raw);
    }

    /// <summary>Sends until the store takes it (the instances may still be reconnecting after the failover).</summary>
    private static Task<Frame> SendAsync(ChatClient client, string text, CancellationToken cancellationToken) =>
        RequestStoredAsync(client, new { type = "sendMessage", text }, cancellationToken);

    /// <summary>Sends <paramref name="frame"/> until it is acked ok; the only refusal allowed meanwhile is "store unavailable".</summary>
    private static async Task<Frame> RequestStoredAsync(ChatClient client, object frame, CancellationToken cancellationToken)
    {
        while (true)
        {
            var ack = await client.RequestAsync(frame, cancellationToken);
            if (ack.Ok)
            {
                return ack;
            }

            Assert.That(ack.Error, Does.StartWith("The message store is unavailable"), ack.Raw);
            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>Reads every client's frames into its list until each has had the message <paramref name="text"/>.</summary>
    private static async Task ReadUntilTextAsync(Dictionary<ChatClient, List<Frame>> seen, string text, CancellationToken cancellationToken)
    {
        foreach (var (client, frames) in seen)
        {
            while (!frames.Any(f => f.Type == "message" && f.Text == text))
            {
                var frame = await client.NextAsync(cancellationToken);
                if (frame.Type != "ack")
                {
                    frames.Add(frame);
                }
            }
        }
    }
}
