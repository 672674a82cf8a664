namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// The property the Lua script exists for: many senders on both instances write to one room at once, and every
/// connection still sees every message exactly once, in <c>seq</c> order with no gaps, and history agrees.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
[TestFixture(Backend.RedisTls)]
public sealed class ConcurrencyTests(Backend backend) : TwoHostFixture(backend)
{
    private const int Senders = 10;
    private const int MessagesEach = 30;
    private const int Total = Senders * MessagesEach;

    /// <summary>
    /// All 300 messages land within a few milliseconds, faster than 12 send loops on two shared cores drain them, so
    /// the default queue of 256 frames (meant to catch clients that stop reading) can fill in a healthy burst. This test
    /// is about order and completeness, so it gives the queue room for the whole burst.
    /// </summary>
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:OutgoingQueueCapacity"] = "1024",
    };

    [Test, CancelAfter(60_000)]
    public async Task Ten_senders_on_two_instances_thirty_messages_each_reach_every_listener_once_in_seq_order(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var listeners = new[]
        {
            await ChatClient.SignInAsync(HostA.WebSocketUri, "listener-a", room, cancellationToken),
            await ChatClient.SignInAsync(HostB.WebSocketUri, "listener-b", room, cancellationToken),
        };
        var senders = new ChatClient[Senders];
        for (var i = 0; i < Senders; i++)
        {
            senders[i] = await ChatClient.SignInAsync((i % 2 == 0 ? HostA : HostB).WebSocketUri, $"sender-{i}", room, cancellationToken);
        }

        try
        {
            // All senders at once, each pipelining its 30 frames without waiting for acks.
            await Task.WhenAll(senders.Select((sender, i) => SendAllAsync(sender, i, cancellationToken)));

            foreach (var client in listeners.Concat(senders))
            {
                var received = await ReceiveMessagesAsync(client, Total, cancellationToken);
                Assert.That(received.Select(m => m.Seq), Is.EqualTo(Enumerable.Range(1, Total).Select(n => (long?)n)),
                    "every message once, in increasing seq, no gaps");
                Assert.That(received.Select(m => m.Text).Distinct().Count(), Is.EqualTo(Total));
                for (var i = 0; i < Senders; i++)
                {
                    var own = received.Where(m => m.User == $"sender-{i}").Select(m => m.Text);
                    Assert.That(own, Is.EqualTo(Enumerable.Range(0, MessagesEach).Select(n => $"{i}:{n}")),
                        "each sender's messages in the order it sent them");
                }
            }

            await using var late = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
            var history = await late.RequestAsync(new { type = "signin", user = "late", room }, cancellationToken);
            Assert.That(history.Messages.Select(m => m.Seq), Is.EqualTo(Enumerable.Range(Total - 99, 100).Select(n => (long?)n)),
                "history holds the newest 100, oldest first");
        }
        finally
        {
            foreach (var client in listeners.Concat(senders))
            {
                await client.DisposeAsync();
            }
        }
    }

    private static async Task SendAllAsync(ChatClient sender, int index, CancellationToken cancellationToken)
    {
        for (var n = 0; n < MessagesEach; n++)
        {
            await sender.SendAsync(new { type = "sendMessage", id = n, text = $"{index}:{n}" }, cancellationToken);
        }
    }

    private static async Task<List<Frame>> ReceiveMessagesAsync(ChatClient client, int count, CancellationToken cancellationToken)
    {
        var messages = new List<Frame>(count);
        while (messages.Count < count)
        {
            var frame = await client.NextAsync(cancellationToken);
            if (frame.Type == "ack")
            {
                Assert.That(frame.Ok, Is.True, frame.Raw);
            }
            else if (frame.Type == "message")
            {
                messages.Add(frame);
            }
        }

        return messages;
    }
}
