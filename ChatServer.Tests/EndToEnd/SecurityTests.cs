using Microsoft.Extensions.Logging;

namespace ChatServer.Tests.EndToEnd;

/// <summary>Names and text are data, never markup, commands or key patterns.</summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class SecurityTests(Backend backend) : TwoHostFixture(backend)
{
    /// <summary>Characters that mean something to Redis (glob, hash tags, key separators), to paths, or to nothing ASCII.</summary>
    private static readonly string[] s_rooms = ["*", "?", "{", "}", "{x}", "a:b", "a/b", "../..", "with space", "🎉 party", "%7D", "[a-z]", "\\"];

    [Test, CancelAfter(30_000)]
    public async Task Rooms_named_with_redis_or_path_characters_work_and_stay_isolated(CancellationToken cancellationToken)
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var rooms = s_rooms.Select(r => r + suffix).ToArray();
        var clients = new List<(string Room, ChatClient A, ChatClient B)>();
        try
        {
            foreach (var room in rooms)
            {
                var a = await ChatClient.SignInAsync(HostA.WebSocketUri, "a", room, cancellationToken);
                var b = await ChatClient.SignInAsync(HostB.WebSocketUri, "b", room, cancellationToken);
                await a.ExpectAsync(f => f.Type == "notification", cancellationToken);
                clients.Add((room, a, b));
            }

            foreach (var (room, a, _) in clients)
            {
                var ack = await a.RequestAsync(new { type = "sendMessage", text = $"in {room}" }, cancellationToken);
                Assert.That((ack.Ok, ack.Seq), Is.EqualTo((true, 1L)), $"{room}: its own seq, untouched by any other room");
            }

            foreach (var (room, a, b) in clients)
            {
                foreach (var client in new[] { a, b })
                {
                    var message = await client.ExpectAsync(f => f.Type == "message", cancellationToken);
                    Assert.That((message.Room, message.Text), Is.EqualTo((room, $"in {room}")));
                }

                // Exactly one message reached this room: the next one it sees is its own sentinel.
                await b.RequestAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken);
                Assert.That((await a.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("sentinel"), room);
            }
        }
        finally
        {
            foreach (var (_, a, b) in clients)
            {
                await a.DisposeAsync();
                await b.DisposeAsync();
            }
        }
    }

    [Test, CancelAfter(15_000)]
    public async Task Message_text_is_not_written_to_logs_at_information_level(CancellationToken cancellationToken)
    {
        var secret = $"secret-{Guid.NewGuid():N}";
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);

        await alice.RequestAsync(new { type = "sendMessage", text = secret }, cancellationToken);
        await bob.ExpectAsync(f => f.Text == secret, cancellationToken);

        Assert.That(HostA.Logs.Entries.Count + HostB.Logs.Entries.Count, Is.GreaterThan(0), "the capture sees the hosts' logs");
        Assert.That(HostA.Logs.Entries.Concat(HostB.Logs.Entries).Where(e => e.Level >= LogLevel.Information).Select(e => e.Message),
            Has.None.Contains(secret));
    }
}
