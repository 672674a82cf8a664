namespace ChatServer.Tests.Conformance;

/// <summary>
/// RFC 6455 as the Node <c>ws</c> library (a strict client: it fails the connection on any framing error of the
/// server's) exercises it: fragmentation, control frames between fragments, the close handshake from either side,
/// the 1009 and 1007 closes. Written against the current transport so a new one must behave the same.
/// </summary>
public sealed class NodeWsConformanceTests : ConformanceFixture
{
    [SetUp]
    public void RequireNode() => NodeWsDriver.Require();

    [Test, CancelAfter(30_000)]
    public async Task A_signin_in_three_fragments_is_answered_and_the_close_handshake_completes(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-frag");
        var run = await NodeWsDriver.RunAsync(Host.WebSocketUri, "fragmented", new { user = "alice", room }, cancellationToken);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var ack = run.Messages.Single(m => m.IsAck("frag"));
        Assert.That((ack.Ok, ack.Room, ack.HasMessages), Is.EqualTo((true, room, true)), ack.Raw);
        Assert.That(run.Close, Is.EqualTo((1000, "")), run.ToString());
        Assert.That(run.Of("error"), Is.Empty, run.ToString());
    }

    [Test, CancelAfter(30_000)]
    public async Task Pings_between_fragments_are_answered_with_their_payload_and_the_message_is_still_handled(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-ping-frag");
        var run = await NodeWsDriver.RunAsync(Host.WebSocketUri, "pingBetweenFragments",
            new { user = "alice", room, ping = "between fragments" }, cancellationToken);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        // The driver waits for each Pong before it sends the next fragment: both were answered mid-message.
        Assert.That(run.Of("pong").Select(p => p.GetProperty("hex").GetString()),
            Is.EqualTo(new[] { Convert.ToHexStringLower("between fragments"u8), "" }), run.ToString());
        var ack = run.Messages.Single(m => m.IsAck("frag"));
        Assert.That((ack.Ok, ack.Room), Is.EqualTo((true, room)), ack.Raw);
        Assert.That(run.Close, Is.EqualTo((1000, "")), run.ToString());
    }

    /// <summary>
    /// The server answers the client's Close with its own and ends the TCP connection (ws emits 'close' only then,
    /// after 'fin'); the user leaves the room at once. The server's Close carries 1000 with an empty reason whatever
    /// code the client sent (RFC 6455 §5.5.1 says it typically echoes the code: see the report).
    /// </summary>
    [TestCase(1000, "bye")]
    [TestCase(4000, "custom reason é")]
    [CancelAfter(30_000)]
    public async Task A_client_close_is_answered_the_TCP_stream_ends_and_the_room_hears_the_user_leave(int code, string reason,
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-close");
        await using var bob = await ChatClient.SignInAsync(Host.WebSocketUri, "bob", room, cancellationToken);

        var run = await NodeWsDriver.RunAsync(Host.WebSocketUri, "clientClose", new { user = "alice", room, code, reason }, cancellationToken);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Kinds.SkipWhile(k => k != "closing").Skip(1).Where(k => k != "message"), Is.EqualTo(new[] { "fin", "close" }), run.ToString());
        Assert.That(run.Close, Is.EqualTo((1000, "")), run.ToString());
        var joined = await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);
        Assert.That(joined.Description, Is.EqualTo("alice just entered the room"), joined.Raw);
        var left = await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);
        Assert.That((left.Title, left.Description), Is.EqualTo(("Someone just left", "alice just left the room")), left.Raw);
    }

    /// <summary>16 KiB + 1 byte, as one frame or as fragments adding up to it: Close 1009, then the TCP end.</summary>
    [TestCase(1)]
    [TestCase(3)]
    [TestCase(40)]
    [CancelAfter(30_000)]
    public async Task A_message_over_MaxFrameBytes_is_closed_with_1009(int fragments, CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-1009");
        var run = await NodeWsDriver.RunAsync(Host.WebSocketUri, "big", new { user = "alice", room, size = 16 * 1024 + 1, fragments },
            cancellationToken);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Close, Is.EqualTo((1009, "Frame too big.")), run.ToString());
        Assert.That(run.Of("error"), Is.Empty, run.ToString());
    }

    [Test, CancelAfter(30_000)]
    public async Task A_message_of_exactly_MaxFrameBytes_in_fragments_is_handled(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-limit");
        // 16 KiB of 'x' is not JSON: an error ack, not a close (the limit is inclusive); the driver then closes.
        var run = await NodeWsDriver.RunAsync(Host.WebSocketUri, "big",
            new { user = "alice", room, size = 16 * 1024, fragments = 4, closeAfterAck = true }, cancellationToken);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        var rejected = run.Messages.Single(m => m.Type == "ack" && m.IdJson == "null");
        Assert.That((rejected.Ok, rejected.Error),
            Is.EqualTo((false, "The frame is not valid JSON: send one UTF-8 JSON object per text frame.")), rejected.Raw);
        Assert.That(run.Close, Is.EqualTo((1000, "")), run.ToString());
    }

    /// <summary>RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007.</summary>
    [TestCase("7bff7d")]          // 0xFF is never UTF-8
    [TestCase("7b22223ac3287d")]   // a lead byte followed by no continuation byte
    [TestCase("eda080")]           // an encoded surrogate (U+D800)
    [TestCase("f4908080")]         // above U+10FFFF
    [CancelAfter(30_000)]
    public async Task Invalid_UTF8_in_a_text_message_is_closed_with_1007(string hex, CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-1007");
        var run = await NodeWsDriver.RunAsync(Host.WebSocketUri, "invalidUtf8", new { user = "alice", room, hex }, cancellationToken);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(run.Close.Code, Is.EqualTo(1007), run.ToString());
        Assert.That(run.Of("error"), Is.Empty, run.ToString());
    }
}
