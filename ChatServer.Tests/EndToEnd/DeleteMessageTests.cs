namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// <c>deleteMessage</c> (protocol 1.2) on the log alone: the author's message becomes a tombstone in history and
/// recovery, every member on both instances hears <c>deleted</c>, and nobody else can delete it.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class DeleteMessageTests(Backend backend) : TwoHostFixture(backend)
{
    [Test, CancelAfter(15_000)]
    public async Task The_author_deletes_a_message_every_member_hears_it_and_history_keeps_a_tombstone(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        var sent = await alice.RequestAsync(new { type = "sendMessage", text = "oops", key = "k1" }, cancellationToken);
        var message = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);

        var ack = await alice.RequestAsync(new { type = "deleteMessage", seq = sent.Seq, epoch = message.Epoch }, cancellationToken);

        Assert.That(ack.Ok, Is.True, ack.Raw);
        foreach (var member in new[] { alice, bob })
        {
            var deleted = await member.ExpectAsync(f => f.Type == "deleted", cancellationToken);
            Assert.That((deleted.Room, deleted.Seq, deleted.Epoch), Is.EqualTo((room, sent.Seq, message.Epoch)));
        }

        var history = await bob.RequestAsync(new { type = "history" }, cancellationToken);
        var tombstone = history.Messages.Single(m => m.Seq == sent.Seq);
        Assert.That((tombstone.User, tombstone.Text, tombstone.Epoch, tombstone.Ts), Is.EqualTo(("alice", (string?)null, message.Epoch, message.Ts)));
        Assert.That(tombstone.Root.GetProperty("deleted").GetBoolean(), Is.True);
        Assert.That(tombstone.Root.TryGetProperty("key", out _), Is.False, "the key is erased too");

        await using var late = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var resumed = await late.RequestAsync(new { type = "updateSocketId", user = "carol", room, since = 0, epoch = message.Epoch }, cancellationToken);
        Assert.That(resumed.Messages.Single(m => m.Seq == sent.Seq).Text, Is.Null, "recovery returns the tombstone too");

        // Deleting it again is fine and announces nothing: the next frame bob gets is the sentinel.
        Assert.That((await alice.RequestAsync(new { type = "deleteMessage", seq = sent.Seq, epoch = message.Epoch }, cancellationToken)).Ok, Is.True);
        Assert.That((await bob.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"));
    }

    [Test, CancelAfter(15_000)]
    public async Task Only_the_author_can_delete_and_only_a_message_history_holds(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        var sent = await alice.RequestAsync(new { type = "sendMessage", text = "mine" }, cancellationToken);
        var epoch = (await alice.ExpectAsync(f => f.Type == "message", cancellationToken)).Epoch;

        var notYours = await bob.RequestAsync(new { type = "deleteMessage", seq = sent.Seq, epoch }, cancellationToken);
        var unknownSeq = await alice.RequestAsync(new { type = "deleteMessage", seq = 99, epoch }, cancellationToken);
        var unknownEpoch = await alice.RequestAsync(new { type = "deleteMessage", seq = sent.Seq, epoch = "zzzzzzzzzz" }, cancellationToken);

        Assert.That((notYours.Ok, notYours.Error), Is.EqualTo((false, "You can delete only your own messages.")));
        Assert.That(unknownSeq.Error, Is.EqualTo($"Message 99 of epoch '{epoch}' is not in this room's history."));
        Assert.That(unknownEpoch.Error, Is.EqualTo($"Message {sent.Seq} of epoch 'zzzzzzzzzz' is not in this room's history."));
        var history = await bob.RequestAsync(new { type = "history" }, cancellationToken);
        Assert.That(history.Messages.Single().Text, Is.EqualTo("mine"), "nothing changed");
    }

    [TestCase("""{"type":"deleteMessage","id":1,"epoch":"e"}""", "Field 'seq' is required and must be an integer >= 1.")]
    [TestCase("""{"type":"deleteMessage","id":1,"seq":"3","epoch":"e"}""", "Field 'seq' is required and must be an integer >= 1.")]
    [TestCase("""{"type":"deleteMessage","id":1,"seq":0,"epoch":"e"}""", "Field 'seq' is required and must be an integer >= 1.")]
    [TestCase("""{"type":"deleteMessage","id":1,"seq":3}""", "Field 'epoch' is required and must be a string.")]
    [TestCase("""{"type":"deleteMessage","id":1,"seq":3,"epoch":7}""", "Field 'epoch' must be a string.")]
    [CancelAfter(15_000)]
    public async Task Bad_delete_frames_name_the_field(string frame, string error, CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.SignInAsync(HostA.WebSocketUri, "a", TestNames.Room(), cancellationToken);
        await client.SendRawAsync(frame, cancellationToken);
        var ack = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
        Assert.That((ack.Ok, ack.IdJson, ack.Error), Is.EqualTo((false, "1", error)));
    }

    [Test, CancelAfter(15_000)]
    public async Task Delete_and_search_need_a_signed_in_connection_and_search_needs_the_database(CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        Assert.That((await client.RequestAsync(new { type = "deleteMessage", seq = 1, epoch = "e" }, cancellationToken)).Error,
            Is.EqualTo("User session not found."));
        await using var member = await ChatClient.SignInAsync(HostA.WebSocketUri, "a", TestNames.Room(), cancellationToken);
        Assert.That((await member.RequestAsync(new { type = "search", q = "hello" }, cancellationToken)).Error,
            Is.EqualTo("Search needs the history database (History__ConnectionString)."));
    }

    [Test, CancelAfter(15_000)]
    public async Task Without_a_database_an_older_epoch_pages_empty(CancellationToken cancellationToken)
    {
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", TestNames.Room(), cancellationToken);
        await alice.RequestAsync(new { type = "sendMessage", text = "now" }, cancellationToken);
        var page = await alice.RequestAsync(new { type = "history", epoch = "oldoldoldo", before = 5 }, cancellationToken);
        Assert.That((page.Ok, page.Messages.Count, page.Root.GetProperty("more").GetBoolean()), Is.EqualTo((true, 0, false)));
    }
}
