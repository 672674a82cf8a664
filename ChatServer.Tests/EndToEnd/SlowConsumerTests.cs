using System.Net.WebSockets;

namespace ChatServer.Tests.EndToEnd;

/// <summary>A client that stops reading is closed with 1008 and leaves its room at once; the room keeps flowing.</summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class SlowConsumerTests(Backend backend) : TwoHostFixture(backend)
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:OutgoingQueueCapacity"] = "64",
        ["Chat:RateLimitPerSecond"] = "100000",
        ["Chat:RateLimitBurst"] = "100000",
        ["Chat:CloseTimeout"] = "00:00:20",
        ["Chat:KeepAlive"] = "00:01:00",
    };

    [Test, CancelAfter(60_000)]
    public async Task A_client_that_does_not_read_is_closed_with_1008_and_the_room_keeps_flowing(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var watcher = await ChatClient.SignInAsync(HostB.WebSocketUri, "watcher", room, cancellationToken);
        await using var sender = await ChatClient.SignInAsync(HostB.WebSocketUri, "sender", room, cancellationToken);
        await using var stuck = await ChatClient.ConnectWithoutReadingAsync(HostA.WebSocketUri, cancellationToken);
        await stuck.SendAsync(new { type = "signin", id = 1, user = "stuck", room }, cancellationToken);
        await watcher.ExpectAsync(f => f.Type == "notification" && f.User == "stuck", cancellationToken);

        // Blast until the server gives up on the non-reader (its socket buffers fill, then its 64-frame queue).
        var text = new string('x', 1900);
        var sent = 0;
        var seqs = new List<long>();   // every message the watcher gets, before and after the cut
        var leaveSeen = watcher.ExpectAsync(f =>
        {
            if (f.Type == "message")
            {
                seqs.Add(f.Seq!.Value);
            }

            return f.Type == "notification" && f.User == "stuck";
        }, cancellationToken);
        while (!leaveSeen.IsCompleted)
        {
            // Batches of 8: the sender's own queue (8 acks and 8 echoes) stays far below the 64 the fixture sets, even when
            // the test process, which hosts both servers, is starved for threads on a busy machine.
            for (var i = 0; i < 8; i++)
            {
                await sender.SendAsync(new { type = "sendMessage", id = sent++, text }, cancellationToken);
            }

            await sender.ExpectAsync(f => f.Type == "ack" && f.IdJson == (sent - 1).ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken);
            Assert.That(sent, Is.LessThan(20_000), "the non-reader was never cut off");
        }

        var left = await leaveSeen;
        Assert.That(left.Title, Is.EqualTo("Someone just left"));

        // The room kept flowing: the watcher got every message, in order, and still gets new ones.
        var last = await sender.RequestAsync(new { type = "sendMessage", text = "after" }, cancellationToken);
        Frame frame;
        do
        {
            frame = await watcher.ExpectAsync(f => f.Type == "message", cancellationToken);
            seqs.Add(frame.Seq!.Value);
        }
        while (frame.Seq != last.Seq);

        Assert.That(seqs, Is.EqualTo(Enumerable.Range(1, seqs.Count).Select(n => (long)n)));

        // Once the client reads again, what reaches it ends with a Close of 1008.
        stuck.StartReading();
        Assert.That(await stuck.WaitForCloseAsync(cancellationToken), Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
    }
}
