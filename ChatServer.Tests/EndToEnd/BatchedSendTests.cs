using System.Globalization;
using ChatServer.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// The own Redis connection's thread sends the deliveries of one read from Redis in one io_uring submission
/// (<see cref="ChatServer.Connections.SendBatch"/>). A member whose socket takes a batched frame only in part, or not
/// at all, gets the rest later, whole and in order, with nothing lost; the room meanwhile keeps flowing.
/// </summary>
[TestFixture(Backend.Redis)]
public sealed class BatchedSendTests(Backend backend) : TwoHostFixture(backend)
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:OutgoingQueueCapacity"] = "1000",   // the slow member is behind, not cut off
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
        ["Chat:KeepAlive"] = "00:01:00",
    };

    [Test, CancelAfter(60_000)]
    public async Task A_member_whose_socket_takes_a_batched_frame_in_part_gets_the_rest_later_whole_and_in_order(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var watcher = await ChatClient.SignInAsync(HostB.WebSocketUri, "watcher", room, cancellationToken);
        await using var slow = await ChatClient.ConnectWithoutReadingAsync(HostA.WebSocketUri, cancellationToken);
        await slow.SendAsync(new { type = "signin", id = 1, user = "slow", room }, cancellationToken);
        await watcher.ExpectAsync(f => f.Type == "notification" && f.User == "slow", cancellationToken);
        await using var sender = await ChatClient.SignInAsync(HostB.WebSocketUri, "sender", room, cancellationToken);

        var connection = HostA.Services.GetRequiredService<RedisConnection>().SubscriberFor(room);
        Assert.That(connection, Is.Not.Null, "the test hosts use the own Redis connection for rooms");
        var before = connection!.BatchedSends;

        // 200 frames of ~2 KB (the longest text allowed): far more than the slow member's socket buffers hold (a 4 KiB
        // receive buffer, the server's 64 KiB send buffer), so some batched sends are taken in part or not at all.
        const int Count = 200;
        var texts = Enumerable.Range(0, Count).Select(i => i.ToString("D4", CultureInfo.InvariantCulture) + new string('x', 1900)).ToList();
        for (var i = 0; i < Count; i += 10)
        {
            for (var j = i; j < i + 10; j++)
            {
                await sender.SendAsync(new { type = "sendMessage", id = j, text = texts[j] }, cancellationToken);
            }

            var ack = await sender.ExpectAsync(f => f.Type == "ack" && f.IdJson == (i + 9).ToString(CultureInfo.InvariantCulture), cancellationToken);
            Assert.That(ack.Ok, Is.True, ack.Raw);
        }

        // The watcher, reading, got all of them meanwhile: the room flowed past the member that did not read.
        var watched = new List<Frame>();
        while (watched.Count < Count)
        {
            watched.Add(await watcher.ExpectAsync(f => f.Type == "message", cancellationToken));
        }

        var after = connection.BatchedSends;
        Assert.That(after.Sent, Is.GreaterThan(before.Sent), "the slow member's host sent its deliveries in batches");
        Assert.That(after.Short, Is.GreaterThan(before.Short), "some batched send was taken only in part or not at all");

        // Once it reads, the slow member gets every message whole, in order, and its connection is still open.
        slow.StartReading();
        var received = new List<Frame>();
        while (received.Count < Count)
        {
            received.Add(await slow.ExpectAsync(f => f.Type == "message", cancellationToken));
        }

        Assert.That(received.Select(f => f.Text), Is.EqualTo(texts));
        Assert.That(received.Select(f => f.Seq), Is.EqualTo(watched.Select(f => f.Seq)));
        Assert.That(received.Zip(received.Skip(1)).All(p => p.Second.Seq == p.First.Seq + 1), "consecutive sequence numbers");
        var last = await sender.RequestAsync(new { type = "sendMessage", text = "after" }, cancellationToken);
        Assert.That((await slow.ExpectAsync(f => f.Type == "message", cancellationToken)).Seq, Is.EqualTo(last.Seq));
    }
}
