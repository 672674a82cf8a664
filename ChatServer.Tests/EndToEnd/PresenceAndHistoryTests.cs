namespace ChatServer.Tests.EndToEnd;

/// <summary>Protocol extensions: <c>members</c> and <c>presence</c> across instances, and <c>history</c> paging.</summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
[TestFixture(Backend.RedisTls)]
public sealed class PresenceAndHistoryTests(Backend backend) : TwoHostFixture(backend)
{
    [Test, CancelAfter(15_000)]
    public async Task Members_lists_each_user_once_across_instances_and_presence_follows_first_and_last_connections(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken, presence: true);
        await bob.ExpectAsync(f => f.Type == "presence" && f.User == "bob", cancellationToken);

        var alice1 = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken, presence: true);
        var joined = await bob.ExpectAsync(f => f.Type == "presence", cancellationToken);
        Assert.That((joined.Room, joined.User, joined.Root.GetProperty("present").GetBoolean()), Is.EqualTo((room, "alice", true)));

        // A second connection of the same user: listed once, and no presence frame (the sentinel comes first).
        var alice2 = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", room, cancellationToken, presence: true);
        var members = await bob.RequestAsync(new { type = "members" }, cancellationToken);
        Assert.That((members.Ok, members.Room), Is.EqualTo((true, room)));
        Assert.That(members.Root.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "alice", "bob" }));
        await alice1.RequestAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken);
        Assert.That((await bob.ExpectAsync(f => f.Type is "presence" or "message", cancellationToken)).Text, Is.EqualTo("sentinel"));

        // Closing one of alice's connections keeps her present; closing the last announces she left.
        await alice1.DisposeAsync();
        await alice2.RequestAsync(new { type = "sendMessage", text = "sentinel 2" }, cancellationToken);
        Assert.That((await bob.ExpectAsync(f => f.Type is "presence" or "message", cancellationToken)).Text, Is.EqualTo("sentinel 2"));
        await alice2.DisposeAsync();
        var left = await bob.ExpectAsync(f => f.Type == "presence", cancellationToken);
        Assert.That((left.User, left.Root.GetProperty("present").GetBoolean()), Is.EqualTo(("alice", false)));
        var after = await bob.RequestAsync(new { type = "members" }, cancellationToken);
        Assert.That(after.Root.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "bob" }));
    }

    [Test, CancelAfter(15_000)]
    public async Task Members_and_history_need_a_signed_in_connection(CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        Assert.That((await client.RequestAsync(new { type = "members" }, cancellationToken)).Error, Is.EqualTo("User session not found."));
        Assert.That((await client.RequestAsync(new { type = "history" }, cancellationToken)).Error, Is.EqualTo("User session not found."));
    }

    [Test, CancelAfter(15_000)]
    public async Task History_pages_back_oldest_first_and_says_whether_more_remain(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken, presence: true);
        for (var i = 1; i <= 10; i++)
        {
            await alice.RequestAsync(new { type = "sendMessage", text = $"m{i}" }, cancellationToken);
        }

        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken, presence: true);
        var page = await bob.RequestAsync(new { type = "history", before = 8, limit = 3 }, cancellationToken);
        Assert.That(page.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 5, 6, 7 }));
        Assert.That((page.Ok, page.Room, page.Root.GetProperty("more").GetBoolean()), Is.EqualTo((true, room, true)));

        var first = await bob.RequestAsync(new { type = "history", before = 3, limit = 5 }, cancellationToken);
        Assert.That(first.Messages.Select(m => m.Text), Is.EqualTo(new[] { "m1", "m2" }));
        Assert.That(first.Root.GetProperty("more").GetBoolean(), Is.False);

        var newest = await bob.RequestAsync(new { type = "history", limit = 2 }, cancellationToken);
        Assert.That(newest.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 9, 10 }));
    }

    [TestCase("""{"type":"history","id":1,"limit":0}""", "'limit'")]
    [TestCase("""{"type":"history","id":1,"limit":101}""", "'limit'")]
    [TestCase("""{"type":"history","id":1,"limit":"5"}""", "'limit'")]
    [TestCase("""{"type":"history","id":1,"before":-1}""", "'before'")]
    [TestCase("""{"type":"history","id":1,"before":1.5}""", "'before'")]
    [CancelAfter(15_000)]
    public async Task Bad_history_frames_are_rejected_by_field(string frame, string error, CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.SignInAsync(HostA.WebSocketUri, "a", TestNames.Room(), cancellationToken);
        await client.SendRawAsync(frame, cancellationToken);
        var ack = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
        Assert.That((ack.Ok, ack.IdJson), Is.EqualTo((false, "1")));
        Assert.That(ack.Error, Does.Contain(error));
    }
}
