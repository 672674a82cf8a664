using ChatServer.Connections;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// The write-delay window (<c>Chat:WriteDelay</c>): a connection that wrote less than a window ago waits for the next
/// tick, so messages in quick succession reach a member in few writes; one that has been quiet writes at once. A window
/// of a second makes both visible in the instance's counts.
/// </summary>
public sealed class WriteDelayTests
{
    private static readonly Dictionary<string, string?> OneSecondWindow = new()
    {
        ["Chat:WriteDelay"] = "00:00:01",
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
    };

    [Test, CancelAfter(30_000)]
    public async Task Messages_in_quick_succession_reach_a_member_in_few_writes_whole_and_in_order(CancellationToken cancellationToken)
    {
        await using var room = await RoomAsync(cancellationToken);
        var (member, sender, writeDelay) = (room.Member, room.Sender, room.WriteDelay);
        var before = writeDelay.Counts;

        // A message every 2 ms or so: without the window each would reach the member (and the sender) in a write of its own.
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

        var after = writeDelay.Counts;
        Assert.That(received.Select(f => f.Text), Is.EqualTo(Enumerable.Range(0, Count).Select(i => $"m{i}")));
        Assert.That(received.Zip(received.Skip(1)).All(p => p.Second.Seq == p.First.Seq + 1), "consecutive sequence numbers");
        Assert.That(after.Held, Is.GreaterThan(before.Held), "writes waited for the window");
        // Two connections (the member's messages, the sender's messages and acks): 120 frames, each a write without the window.
        Assert.That(after.Writes - before.Writes, Is.LessThan(Count / 2), "the frames went out joined, in few writes");
    }

    [Test, CancelAfter(30_000)]
    public async Task A_message_after_a_quiet_spell_goes_out_at_once(CancellationToken cancellationToken)
    {
        await using var room = await RoomAsync(cancellationToken);
        var (member, sender, writeDelay) = (room.Member, room.Sender, room.WriteDelay);

        await Task.Delay(1_500, cancellationToken);   // quiet: neither connection wrote for longer than the window
        var before = writeDelay.Counts;
        var sent = System.Diagnostics.Stopwatch.StartNew();
        await sender.SendAsync(new { type = "sendMessage", text = "lone" }, cancellationToken);
        var message = await member.ExpectAsync(f => f.Type == "message", cancellationToken);
        var waited = sent.Elapsed;

        Assert.That(message.Text, Is.EqualTo("lone"));
        Assert.That(writeDelay.Counts.Writes, Is.GreaterThan(before.Writes), "the delivery was written");
        Assert.That(waited, Is.LessThan(TimeSpan.FromMilliseconds(500)), "not held for the one-second window");
    }

    /// <summary>A host with the one-second window, and a member and a sender in a new room on it.</summary>
    private static async Task<Room> RoomAsync(CancellationToken cancellationToken)
    {
        var host = new ChatHost(TestRedis.ConnectionString, OneSecondWindow);
        var name = TestNames.Room();
        var member = await ChatClient.SignInAsync(host.WebSocketUri, "member", name, cancellationToken);
        var sender = await ChatClient.SignInAsync(host.WebSocketUri, "sender", name, cancellationToken);
        await member.ExpectAsync(f => f.Type == "notification" && f.User == "sender", cancellationToken);
        return new Room(host, member, sender, host.Services.GetRequiredService<WriteDelay>());
    }

    private sealed record Room(ChatHost Host, ChatClient Member, ChatClient Sender, WriteDelay WriteDelay) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Member.DisposeAsync();
            await Sender.DisposeAsync();
            await Host.DisposeAsync();
        }
    }
}
