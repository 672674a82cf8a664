using System.Globalization;
using ChatServer.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// The batch window (<see cref="RedisOptions.BatchWindowMs"/>): while an own Redis connection's reads come close
/// together, a batch of deliveries waits for the reads that follow, so a member's frames go out in fewer sends; a read
/// after a quiet spell goes out at once. A window of a second makes both visible in the connection's counters.
/// </summary>
[TestFixture(Backend.Redis)]
public sealed class BatchWindowTests(Backend backend) : TwoHostFixture(backend)
{
    private const int WindowMs = 1_000;

    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Redis:BatchWindowMs"] = WindowMs.ToString(CultureInfo.InvariantCulture),
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
    };

    [Test, CancelAfter(30_000)]
    public async Task Messages_in_quick_succession_reach_a_member_in_few_sends_whole_and_in_order(CancellationToken cancellationToken)
    {
        await using var pair = await MemberAndSenderAsync(cancellationToken);
        var (member, sender, connection) = pair;
        var before = connection.BatchedSends;

        // A message every 2 ms or so: without the window each would reach host A in a read (and a send) of its own.
        const int Count = 40;
        for (var i = 0; i < Count; i++)
        {
            await sender.SendAsync(new { type = "sendMessage", id = i, text = $"m{i}" }, cancellationToken);
            await Task.Delay(2, cancellationToken);
        }

        var received = new List<Frame>();
        while (received.Count < Count)
        {
            received.Add(await member.ExpectAsync(f => f.Type == "message", cancellationToken));
        }

        var after = connection.BatchedSends;
        Assert.That(received.Select(f => f.Text), Is.EqualTo(Enumerable.Range(0, Count).Select(i => $"m{i}")));
        Assert.That(received.Zip(received.Skip(1)).All(p => p.Second.Seq == p.First.Seq + 1), "consecutive sequence numbers");
        Assert.That(after.Held, Is.GreaterThan(before.Held), "a batch waited for the reads that followed");
        Assert.That(after.Sent - before.Sent, Is.LessThan(Count / 4), "the member's messages went out joined, in few sends");
    }

    [Test, CancelAfter(30_000)]
    public async Task A_message_after_a_quiet_spell_goes_out_at_once(CancellationToken cancellationToken)
    {
        await using var pair = await MemberAndSenderAsync(cancellationToken);
        var (member, sender, connection) = pair;

        await Task.Delay(WindowMs + 500, cancellationToken);   // quiet: host A's connection read nothing for longer than the window
        var before = connection.BatchedSends;
        var ack = await sender.RequestAsync(new { type = "sendMessage", text = "lone" }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        var message = await member.ExpectAsync(f => f.Type == "message", cancellationToken);

        var after = connection.BatchedSends;
        Assert.That(message.Text, Is.EqualTo("lone"));
        Assert.That(after.Held, Is.EqualTo(before.Held), "nothing was held for the window");
        Assert.That(after.Sent, Is.GreaterThan(before.Sent), "the delivery went out through the batch");
    }

    /// <summary>A member on host A and a sender on host B in a new room, and host A's own connection for that room.</summary>
    private async Task<Pair> MemberAndSenderAsync(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var member = await ChatClient.SignInAsync(HostA.WebSocketUri, "member", room, cancellationToken);
        var sender = await ChatClient.SignInAsync(HostB.WebSocketUri, "sender", room, cancellationToken);
        await member.ExpectAsync(f => f.Type == "notification" && f.User == "sender", cancellationToken);
        return new Pair(member, sender, HostA.Services.GetRequiredService<RedisConnection>().SubscriberFor(room)!);
    }

    private sealed record Pair(ChatClient Member, ChatClient Sender, RedisSubscriber Connection) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Member.DisposeAsync();
            await Sender.DisposeAsync();
        }
    }
}
