using System.Diagnostics;

namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// Protocol 1.2 for clients: a <c>sendMessage</c> with a <c>key</c> is stored once however often it is sent (on one
/// instance, raced on two), and <c>typing</c> reaches the room's other members on every instance.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class ResendAndTypingTests(Backend backend) : TwoHostFixture(backend)
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(2);

    private const string KeyError = "Field 'key' must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.";

    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:IdempotencyWindow"] = Window.ToString(),
    };

    [Test, CancelAfter(15_000)]
    public async Task The_same_key_sent_twice_stores_one_message_and_the_second_ack_says_duplicate(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);

        var first = await alice.RequestAsync(new { type = "sendMessage", text = "hello", key = "k-1" }, cancellationToken);
        var second = await alice.RequestAsync(new { type = "sendMessage", text = "hello", key = "k-1" }, cancellationToken);

        Assert.That((first.Ok, Duplicate(first)), Is.EqualTo((true, (bool?)null)));
        Assert.That((second.Ok, second.Seq, Duplicate(second)), Is.EqualTo((true, first.Seq, (bool?)true)));
        var message = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That((message.Seq, message.Text, Key(message)), Is.EqualTo((first.Seq, "hello", "k-1")));
        Assert.That((await bob.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"), "the room saw the message once");

        var history = await bob.RequestAsync(new { type = "history" }, cancellationToken);
        Assert.That(history.Messages.Where(m => m.Text == "hello").Select(m => (m.Seq, Key(m))), Is.EqualTo(new[] { (first.Seq, "k-1") }));
    }

    [Test, CancelAfter(30_000)]
    public async Task The_same_key_raced_on_two_instances_stores_one_message(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var onA = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var onB = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", room, cancellationToken);

        for (var i = 0; i < 20; i++)
        {
            var key = $"race-{i}";
            var acks = await Task.WhenAll(
                onA.RequestAsync(new { type = "sendMessage", text = key, key }, cancellationToken),
                onB.RequestAsync(new { type = "sendMessage", text = key, key }, cancellationToken));

            Assert.That(acks.Select(a => a.Ok), Is.All.True);
            Assert.That(acks[1].Seq, Is.EqualTo(acks[0].Seq), key);
            Assert.That(acks.Count(a => Duplicate(a) == true), Is.EqualTo(1), key);
        }

        var history = await onA.RequestAsync(new { type = "history", limit = 100 }, cancellationToken);
        Assert.That(history.Messages.Select(m => m.Text), Is.EqualTo(Enumerable.Range(0, 20).Select(i => $"race-{i}")));
    }

    [Test, CancelAfter(15_000)]
    public async Task The_same_key_from_another_user_or_in_another_room_is_another_message(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var otherRoom = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        await using var aliceElsewhere = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", otherRoom, cancellationToken);

        var fromAlice = await alice.RequestAsync(new { type = "sendMessage", text = "one", key = "shared" }, cancellationToken);
        var fromBob = await bob.RequestAsync(new { type = "sendMessage", text = "two", key = "shared" }, cancellationToken);
        var inOtherRoom = await aliceElsewhere.RequestAsync(new { type = "sendMessage", text = "three", key = "shared" }, cancellationToken);

        Assert.That(new[] { fromAlice, fromBob, inOtherRoom }.Select(Duplicate), Is.All.Null);
        Assert.That(fromBob.Seq, Is.EqualTo(fromAlice.Seq + 1));
        Assert.That(inOtherRoom.Seq, Is.EqualTo(1));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_key_is_forgotten_after_the_idempotency_window(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        var clock = Stopwatch.StartNew();
        var first = await alice.RequestAsync(new { type = "sendMessage", text = "again", key = "windowed" }, cancellationToken);

        // Resend until the room takes it as new: within the window every resend is a duplicate of the first.
        Frame resent;
        while (Duplicate(resent = await alice.RequestAsync(new { type = "sendMessage", text = "again", key = "windowed" }, cancellationToken)) == true)
        {
            Assert.That(resent.Seq, Is.EqualTo(first.Seq));
            await Task.Delay(100, cancellationToken);
        }

        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(Window - TimeSpan.FromMilliseconds(100)), "not before the window ended");
        Assert.That(resent.Seq, Is.EqualTo(first.Seq + 1));
    }

    [TestCase("\"\"")]
    [TestCase("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"")]   // 65
    [TestCase("\"a b\"")]
    [TestCase("\"é\"")]
    [TestCase("\"a/b\"")]
    [TestCase("5")]
    [TestCase("true")]
    [TestCase("[\"a\"]")]
    [CancelAfter(15_000)]
    public async Task A_bad_key_is_refused_naming_the_field_and_stores_nothing(string key, CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);

        await alice.SendRawAsync($$"""{"type":"sendMessage","id":"bad","text":"hi","key":{{key}}}""", cancellationToken);
        var ack = await alice.ExpectAsync(f => f.Type == "ack", cancellationToken);

        Assert.That((ack.Ok, ack.IdJson, ack.Error), Is.EqualTo((false, "\"bad\"", KeyError)));
        Assert.That((await alice.SendSentinelAndReadNextAsync(cancellationToken)).Seq, Is.EqualTo(1), "nothing was stored");
    }

    [Test, CancelAfter(15_000)]
    public async Task A_64_character_key_of_every_allowed_kind_is_accepted(CancellationToken cancellationToken)
    {
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", TestNames.Room(), cancellationToken);
        var key = "AZaz09_-" + new string('x', 56);
        var ack = await alice.RequestAsync(new { type = "sendMessage", text = "ok", key }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        Assert.That(Key(await alice.ExpectAsync(f => f.Type == "message", cancellationToken)), Is.EqualTo(key));
    }

    [Test, CancelAfter(20_000)]
    public async Task Typing_reaches_the_other_members_on_every_instance_at_most_once_in_two_seconds(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        await using var carol = await ChatClient.SignInAsync(HostA.WebSocketUri, "carol", room, cancellationToken);

        var clock = Stopwatch.StartNew();
        Assert.That((await alice.RequestAsync(new { type = "typing" }, cancellationToken)).Ok, Is.True);
        foreach (var member in new[] { bob, carol })
        {
            var typing = await member.ExpectAsync(f => f.Type is "typing" or "message", cancellationToken);
            Assert.That((typing.Type, typing.Room, typing.User), Is.EqualTo(("typing", room, "alice")));
        }

        // Within two seconds: acked, dropped. The sender never hears its own.
        Assert.That((await alice.RequestAsync(new { type = "typing" }, cancellationToken)).Ok, Is.True);
        var sentinel = (await alice.RequestAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken)).Seq;
        Assert.That((await bob.ExpectAsync(f => f.Type is "typing" or "message", cancellationToken)).Seq, Is.EqualTo(sentinel));
        Assert.That((await alice.ExpectAsync(f => f.Type is "typing" or "message", cancellationToken)).Seq, Is.EqualTo(sentinel));

        // After two seconds the next one goes through again.
        while (true)
        {
            await alice.RequestAsync(new { type = "typing" }, cancellationToken);
            var next = (await alice.RequestAsync(new { type = "sendMessage", text = "probe" }, cancellationToken)).Seq;
            var seen = await bob.ExpectAsync(f => f.Type == "typing" || (f.Type == "message" && f.Seq == next), cancellationToken);
            if (seen.Type == "typing")
            {
                break;
            }

            await Task.Delay(200, cancellationToken);
        }

        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(2) - TimeSpan.FromMilliseconds(100)));
    }

    [Test, CancelAfter(15_000)]
    public async Task Typing_needs_a_signed_in_connection(CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var ack = await client.RequestAsync(new { type = "typing" }, cancellationToken);
        Assert.That((ack.Ok, ack.Error), Is.EqualTo((false, "User session not found.")));
    }

    private static bool? Duplicate(Frame frame) =>
        frame.Root.TryGetProperty("duplicate", out var value) ? value.GetBoolean() : null;

    private static string? Key(Frame frame) =>
        frame.Root.TryGetProperty("key", out var value) ? value.GetString() : null;
}
