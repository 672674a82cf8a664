using System.Globalization;

namespace ChatServer.Tests.Retention;

/// <summary>
/// PROTOCOL.md "Retention" with a one-second <c>Chat:HistoryTtl</c>: an idle room's history, counter and epoch expire
/// together and the room starts over with a new epoch, for a client coming back and for one that stayed. The tests
/// wait out the TTL (plus a margin) without touching the room, then look: no timing is asserted.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class RetentionTests(Backend backend) : TwoHostFixture(backend)
{
    private static readonly TimeSpan s_ttl = TimeSpan.FromSeconds(1);
    private readonly string _prefix = $"ret-{Guid.NewGuid():N}:";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Chat:HistoryTtl"] = s_ttl.ToString("c", CultureInfo.InvariantCulture),
        ["Redis:KeyPrefix"] = _prefix,
    };

    [Test, CancelAfter(20_000)]
    public async Task An_idle_room_expires_and_a_resuming_client_gets_a_new_epoch_and_recovered_false(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var epoch = await SendAsync(HostA, room, ["m1", "m2"], cancellationToken);

        await WaitOutTheTtlAsync(room, cancellationToken);

        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 2, epoch }, cancellationToken);
        Assert.That((ack.Ok, ack.Recovered), Is.EqualTo((true, (bool?)false)), ack.Raw);
        Assert.That(ack.Epoch, Is.Not.EqualTo(epoch).And.Not.Null, "the room started over with a new epoch");
        Assert.That(ack.Messages, Is.Empty, "the old history expired with it");

        var sent = await back.RequestAsync(new { type = "sendMessage", text = "again" }, cancellationToken);
        Assert.That(sent.Seq, Is.EqualTo(1), "seq starts from 1 again: " + sent.Raw);
    }

    [Test, CancelAfter(20_000)]
    public async Task A_member_that_stayed_connected_gets_the_next_message_in_the_new_epoch(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        var first = await alice.RequestAsync(new { type = "sendMessage", text = "before" }, cancellationToken);
        var old = await bob.ExpectAsync(f => f.Type == "message" && f.Text == "before", cancellationToken);

        await WaitOutTheTtlAsync(room, cancellationToken);

        var second = await alice.RequestAsync(new { type = "sendMessage", text = "after" }, cancellationToken);
        var seen = await bob.ExpectAsync(f => f.Type == "message" && f.Text == "after", cancellationToken);
        Assert.That((second.Seq, seen.Seq), Is.EqualTo(((long?)1, (long?)1)), seen.Raw);
        Assert.That(seen.Epoch, Is.Not.EqualTo(old.Epoch).And.Not.Null, seen.Raw);
        Assert.That(first.Seq, Is.EqualTo(1));
    }

    /// <summary>Waits the TTL and half as much again; on Redis, also until the room's keys are really gone.</summary>
    private async Task WaitOutTheTtlAsync(string room, CancellationToken cancellationToken)
    {
        await Task.Delay(s_ttl * 1.5, cancellationToken);
        if (Backend == Backend.InProcess)
        {
            return;
        }

        while (true)
        {
            var left = (await RedisKeysProbe.KeysAsync(Backend, _prefix))
                .Where(k => k.Key.Contains(room, StringComparison.Ordinal)
                    && (k.Key.EndsWith(":meta", StringComparison.Ordinal) || k.Key.EndsWith(":history", StringComparison.Ordinal)));
            if (!left.Any())
            {
                return;
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task<string> SendAsync(ChatHost host, string room, string[] texts, CancellationToken cancellationToken)
    {
        await using var sender = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        var signin = await sender.RequestAsync(new { type = "signin", user = "sender", room }, cancellationToken);
        foreach (var text in texts)
        {
            var ack = await sender.RequestAsync(new { type = "sendMessage", text }, cancellationToken);
            Assert.That(ack.Ok, Is.True, ack.Raw);
        }

        return signin.Epoch!;
    }
}
