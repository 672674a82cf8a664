using System.Text.RegularExpressions;

namespace ChatServer.Tests.EndToEnd;

[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
[TestFixture(Backend.RedisTls)]
public sealed partial class SignInTests(Backend backend) : TwoHostFixture(backend)
{
    [Test, CancelAfter(15_000)]
    public async Task Signin_acks_with_room_epoch_and_empty_history_for_a_new_room(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        await alice.SendRawAsync($$"""{"type":"signin","id":1,"user":"alice","room":"{{room}}"}""", cancellationToken);

        var ack = await alice.NextAsync(cancellationToken);

        Assert.That(ack.Type, Is.EqualTo("ack"));
        Assert.That(ack.IdJson, Is.EqualTo("1"));
        Assert.That(ack.Ok, Is.True);
        Assert.That(ack.Room, Is.EqualTo(room));
        Assert.That(ack.Epoch, Is.Not.Null.And.Not.Empty);
        Assert.That(ack.HasMessages, Is.True, "messages is an empty array, never null or missing");
        Assert.That(ack.Messages, Is.Empty);
    }

    [Test, CancelAfter(15_000)]
    public async Task Signin_notifies_every_other_connection_on_both_instances_but_not_the_joiner(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var bob = await ChatClient.SignInAsync(HostA.WebSocketUri, "bob", room, cancellationToken);
        await using var carol = await ChatClient.SignInAsync(HostB.WebSocketUri, "carol", room, cancellationToken);
        await bob.ExpectAsync(f => f.Type == "notification" && f.User == "carol", cancellationToken);

        // Barrier: carol's own message reaches her only after her instance has had the notification of her join (one
        // subscription, in Redis's order), so that notification cannot arrive after alice has joined there.
        var barrier = await carol.RequestAsync(new { type = "sendMessage", text = "barrier" }, cancellationToken);
        Assert.That(barrier.Ok, Is.True, barrier.Raw);
        await carol.ExpectAsync(f => f.Type == "message" && f.Text == "barrier", cancellationToken);
        await bob.ExpectAsync(f => f.Type == "message" && f.Text == "barrier", cancellationToken);

        await using var alice = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", room, cancellationToken);

        foreach (var other in new[] { bob, carol })
        {
            var notification = await other.NextAsync(cancellationToken);
            Assert.That(notification.Type, Is.EqualTo("notification"), notification.Raw);
            Assert.That((notification.Room, notification.User, notification.Title, notification.Description),
                Is.EqualTo((room, "alice", "Someone's here", "alice just entered the room")));
        }

        // Sentinel: alice's next frame is her own message, not a notification about herself.
        await alice.SendAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken);
        var next = await alice.NextAsync(cancellationToken);
        Assert.That(next.Type, Is.AnyOf("message", "ack"), next.Raw);
    }

    [Test, CancelAfter(15_000)]
    public async Task Message_reaches_every_member_on_both_instances_sender_included_exactly_once(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        await alice.ExpectAsync(f => f.Type == "notification", cancellationToken);

        var ack = await alice.RequestAsync(new { type = "sendMessage", text = "hello" }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        Assert.That(ack.Seq, Is.EqualTo(1));

        foreach (var client in new[] { alice, bob })
        {
            var message = await client.ExpectAsync(f => f.Type == "message", cancellationToken);
            Assert.That((message.Room, message.User, message.Text, message.Seq), Is.EqualTo((room, "alice", "hello", 1L)));
            Assert.That(message.Epoch, Is.Not.Null.And.Not.Empty);
            Assert.That(message.Ts, Does.Match(TimestampPattern()));

            // Exactly once: the next message this client sees is the sentinel, with the next seq.
            await client.SendAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken);
            var next = await client.ExpectAsync(f => f.Type == "message", cancellationToken);
            Assert.That(next.Text, Is.EqualTo("sentinel"));
        }
    }

    [Test, CancelAfter(15_000)]
    public async Task Ack_and_message_carry_the_same_seq_and_epoch_as_signin_ack(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var signin = await alice.RequestAsync(new { type = "signin", user = "alice", room }, cancellationToken);

        await alice.SendRawAsync("""{"type":"sendMessage","id":"m-1","text":"one"}""", cancellationToken);
        Frame[] both = [await alice.NextAsync(cancellationToken), await alice.NextAsync(cancellationToken)];   // either order
        var message = both.Single(f => f.Type == "message");
        var ack = both.Single(f => f.Type == "ack");

        Assert.That(ack.IdJson, Is.EqualTo("\"m-1\""));
        Assert.That(ack.Seq, Is.EqualTo(message.Seq));
        Assert.That(message.Epoch, Is.EqualTo(signin.Epoch));
    }

    [Test, CancelAfter(15_000)]
    public async Task History_is_sent_on_signin_oldest_first_as_message_objects(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using (var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken))
        {
            foreach (var text in new[] { "one", "two", "three" })
            {
                Assert.That((await alice.RequestAsync(new { type = "sendMessage", text }, cancellationToken)).Ok, Is.True);
            }
        }

        await using var bob = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        var ack = await bob.RequestAsync(new { type = "signin", user = "bob", room }, cancellationToken);

        Assert.That(ack.Messages.Select(m => m.Text), Is.EqualTo(new[] { "one", "two", "three" }));
        Assert.That(ack.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 1, 2, 3 }));
        Assert.That(ack.Messages.Select(m => m.Type).Distinct(), Is.EqualTo(new[] { "message" }));
        Assert.That(ack.Messages.Select(m => m.Epoch).Distinct(), Is.EqualTo(new[] { ack.Epoch }));
    }

    [Test, CancelAfter(15_000)]
    public async Task Signing_in_again_to_the_same_room_answers_with_history_and_announces_nothing(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);
        await alice.RequestAsync(new { type = "sendMessage", text = "before" }, cancellationToken);
        await alice.ExpectAsync(f => f.Type == "message", cancellationToken);
        await bob.ExpectAsync(f => f.Type == "message", cancellationToken);

        var again = await alice.RequestAsync(new { type = "signin", user = "alice", room }, cancellationToken);
        Assert.That(again.Messages.Select(m => m.Text), Is.EqualTo(new[] { "before" }));

        // No duplicate of "before" after the ack, and bob got no notification: the next frames are the sentinel.
        var aliceNext = await alice.SendSentinelAndReadNextAsync(cancellationToken);
        var bobNext = await bob.NextAsync(cancellationToken);
        Assert.That(aliceNext.Text, Is.EqualTo("sentinel"), aliceNext.Raw);
        Assert.That(bobNext.Text, Is.EqualTo("sentinel"), bobNext.Raw);
    }

    [Test, CancelAfter(15_000)]
    public async Task Signing_in_to_another_room_moves_the_connection_with_leave_and_join_notifications(CancellationToken cancellationToken)
    {
        var (first, second) = (TestNames.Room("first"), TestNames.Room("second"));
        await using var inFirst = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", first, cancellationToken);
        await using var inSecond = await ChatClient.SignInAsync(HostB.WebSocketUri, "carol", second, cancellationToken);
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", first, cancellationToken);
        await inFirst.ExpectAsync(f => f.Type == "notification", cancellationToken);

        var moved = await alice.RequestAsync(new { type = "signin", user = "alice", room = second }, cancellationToken);
        Assert.That(moved.Room, Is.EqualTo(second));

        var left = await inFirst.NextAsync(cancellationToken);
        Assert.That((left.Type, left.User, left.Title, left.Description),
            Is.EqualTo(("notification", "alice", "Someone just left", "alice just left the room")));
        var joined = await inSecond.NextAsync(cancellationToken);
        Assert.That((joined.Type, joined.User, joined.Title), Is.EqualTo(("notification", "alice", "Someone's here")));

        // Messages now go to the new room only.
        await alice.RequestAsync(new { type = "sendMessage", text = "in second" }, cancellationToken);
        Assert.That((await inSecond.NextAsync(cancellationToken)).Text, Is.EqualTo("in second"));
        Assert.That((await inFirst.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"));
    }

    [Test, CancelAfter(15_000)]
    public async Task Closing_a_signed_in_connection_notifies_the_room(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);

        await alice.DisposeAsync();

        var left = await bob.NextAsync(cancellationToken);
        Assert.That((left.Type, left.Room, left.User, left.Title, left.Description),
            Is.EqualTo(("notification", room, "alice", "Someone just left", "alice just left the room")));
    }

    [Test, CancelAfter(15_000)]
    public async Task Rooms_are_isolated_and_names_are_case_sensitive(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("Room");
        await using var upper = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var lower = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room.ToLowerInvariant(), cancellationToken);

        await upper.RequestAsync(new { type = "sendMessage", text = "upper only" }, cancellationToken);
        var next = await lower.SendSentinelAndReadNextAsync(cancellationToken);
        Assert.That(next.Text, Is.EqualTo("sentinel"), next.Raw);
        Assert.That((await upper.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("upper only"));
    }

    [Test, CancelAfter(15_000)]
    public async Task User_and_room_are_stored_and_shown_trimmed_and_text_exactly_as_sent(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var ack = await alice.RequestAsync(new { type = "signin", user = "  alice\t", room = $" {room} " }, cancellationToken);
        Assert.That(ack.Room, Is.EqualTo(room));

        const string text = "  spaced\ttext\r\nwith é, \"quotes\", <b>markup</b> and 🎉  ";
        await alice.RequestAsync(new { type = "sendMessage", text }, cancellationToken);
        var message = await alice.ExpectAsync(f => f.Type == "message", cancellationToken);

        Assert.That((message.User, message.Room, message.Text), Is.EqualTo(("alice", room, text)));
        Assert.That(message.Raw, Does.Contain("é"), "the relaxed encoder keeps text readable");
    }

    [Test, CancelAfter(15_000)]
    public async Task Several_connections_may_use_the_same_user_name(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var first = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var second = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", room, cancellationToken);

        var notification = await first.NextAsync(cancellationToken);
        Assert.That((notification.Type, notification.User), Is.EqualTo(("notification", "alice")));
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
    private static partial Regex TimestampPattern();
}
