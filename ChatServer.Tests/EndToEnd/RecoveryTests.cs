namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// History cap and <c>updateSocketId</c> recovery, with <c>HistoryLength</c> 5 so trimming is quick to reach. Recovery
/// is always done on the *other* instance, as after a reconnect through a load balancer.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
[TestFixture(Backend.RedisTls)]
public sealed class RecoveryTests(Backend backend) : TwoHostFixture(backend)
{
    private const int HistoryLength = 5;

    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:HistoryLength"] = HistoryLength.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Test, CancelAfter(15_000)]
    public async Task History_keeps_the_newest_HistoryLength_messages_oldest_first(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await SendAsync(HostA, room, 8, cancellationToken);

        await using var reader = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        var ack = await reader.RequestAsync(new { type = "signin", user = "reader", room }, cancellationToken);

        Assert.That(ack.Messages.Select(m => m.Text), Is.EqualTo(new[] { "m4", "m5", "m6", "m7", "m8" }));
        Assert.That(ack.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 4, 5, 6, 7, 8 }));
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_with_since_on_the_other_instance_recovers_exactly_the_missed_messages(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        var epoch = await SendAsync(HostA, room, 2, cancellationToken);   // alice saw m1, m2 ...
        await alice.ExpectAsync(f => f.Seq == 2 && f.Type == "message", cancellationToken);
        await alice.DisposeAsync();                                        // ... then lost her connection
        await SendAsync(HostA, room, 2, cancellationToken, firstNumber: 3); // m3, m4 were sent meanwhile

        await using var watcher = await ChatClient.SignInAsync(HostA.WebSocketUri, "watcher", room, cancellationToken);
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 2, epoch }, cancellationToken);

        Assert.That((ack.Ok, ack.Room, ack.Epoch, ack.Recovered), Is.EqualTo((true, room, epoch, (bool?)true)), ack.Raw);
        Assert.That(ack.Messages.Select(m => m.Text), Is.EqualTo(new[] { "m3", "m4" }));

        // Registered as alice in the room, silently: her message arrives, and the watcher saw no join notification.
        var sent = await back.RequestAsync(new { type = "sendMessage", text = "I'm back" }, cancellationToken);
        Assert.That(sent.Seq, Is.EqualTo(5));
        var seen = await watcher.NextAsync(cancellationToken);
        Assert.That((seen.Type, seen.User, seen.Text), Is.EqualTo(("message", "alice", "I'm back")), seen.Raw);
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_with_since_equal_to_the_current_seq_recovers_an_empty_list(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var epoch = await SendAsync(HostA, room, 3, cancellationToken);
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);

        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 3, epoch }, cancellationToken);

        Assert.That((ack.Ok, ack.Recovered, ack.HasMessages), Is.EqualTo((true, (bool?)true, true)), ack.Raw);
        Assert.That(ack.Messages, Is.Empty);
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_after_missed_messages_were_trimmed_is_not_recovered_and_returns_the_history(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var epoch = await SendAsync(HostA, room, 9, cancellationToken);   // history now holds m5..m9
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);

        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 2, epoch }, cancellationToken);

        Assert.That((ack.Ok, ack.Recovered), Is.EqualTo((true, (bool?)false)), ack.Raw);
        Assert.That(ack.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 5, 6, 7, 8, 9 }));
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_just_inside_the_kept_history_is_recovered(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var epoch = await SendAsync(HostA, room, 9, cancellationToken);   // m5..m9 kept; since 4 misses nothing trimmed
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);

        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 4, epoch }, cancellationToken);

        Assert.That(ack.Recovered, Is.True, ack.Raw);
        Assert.That(ack.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 5, 6, 7, 8, 9 }));
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_with_another_epoch_is_not_recovered_and_returns_the_whole_history(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await SendAsync(HostA, room, 3, cancellationToken);
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);

        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 1, epoch = "not-this-one" }, cancellationToken);

        Assert.That((ack.Ok, ack.Recovered), Is.EqualTo((true, (bool?)false)), ack.Raw);
        Assert.That(ack.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 1, 2, 3 }));
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_with_since_beyond_the_current_seq_is_not_recovered(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await SendAsync(HostA, room, 2, cancellationToken);
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);

        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 40 }, cancellationToken);

        Assert.That(ack.Recovered, Is.False, ack.Raw);
        Assert.That(ack.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 1, 2 }));
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_without_since_carries_neither_messages_nor_recovered(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await SendAsync(HostA, room, 2, cancellationToken);
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);

        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room }, cancellationToken);

        Assert.That((ack.Ok, ack.Room, ack.HasMessages, ack.Recovered), Is.EqualTo((true, room, false, (bool?)null)), ack.Raw);
        Assert.That(ack.Epoch, Is.Not.Null);
        var sent = await back.RequestAsync(new { type = "sendMessage", text = "hi" }, cancellationToken);
        Assert.That(sent.Seq, Is.EqualTo(3));
    }

    [Test, CancelAfter(15_000)]
    public async Task UpdateSocketId_on_a_signed_in_connection_moves_it_without_announcing(CancellationToken cancellationToken)
    {
        var (first, second) = (TestNames.Room("first"), TestNames.Room("second"));
        await using var inFirst = await ChatClient.SignInAsync(HostA.WebSocketUri, "bob", first, cancellationToken);
        await using var inSecond = await ChatClient.SignInAsync(HostA.WebSocketUri, "carol", second, cancellationToken);
        await using var alice = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", first, cancellationToken);
        await inFirst.ExpectAsync(f => f.Type == "notification", cancellationToken);

        var ack = await alice.RequestAsync(new { type = "updateSocketId", user = "alice", room = second }, cancellationToken);
        Assert.That((ack.Ok, ack.Room), Is.EqualTo((true, second)));

        await alice.RequestAsync(new { type = "sendMessage", text = "moved" }, cancellationToken);
        var seen = await inSecond.NextAsync(cancellationToken);
        Assert.That((seen.Type, seen.Text), Is.EqualTo(("message", "moved")), "no join notification came first");
        var next = await inFirst.SendSentinelAndReadNextAsync(cancellationToken);
        Assert.That(next.Text, Is.EqualTo("sentinel"), "no leave notification came first");
    }

    [Test, CancelAfter(15_000)]
    public async Task Live_messages_after_a_recovery_ack_continue_without_gap_or_duplicate(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var epoch = await SendAsync(HostA, room, 2, cancellationToken);
        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        var ack = await back.RequestAsync(new { type = "updateSocketId", user = "alice", room, since = 1, epoch }, cancellationToken);
        Assert.That(ack.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 2 }));

        await SendAsync(HostA, room, 2, cancellationToken, firstNumber: 3);

        Assert.That((await back.ExpectAsync(f => f.Type == "message", cancellationToken)).Seq, Is.EqualTo(3));
        Assert.That((await back.ExpectAsync(f => f.Type == "message", cancellationToken)).Seq, Is.EqualTo(4));
    }

    /// <summary>Sends <paramref name="count"/> messages <c>m{n}</c> from a fresh connection; returns the room's epoch.</summary>
    private static async Task<string> SendAsync(ChatHost host, string room, int count, CancellationToken cancellationToken, int firstNumber = 1)
    {
        await using var sender = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        var signin = await sender.RequestAsync(new { type = "signin", user = "sender", room }, cancellationToken);
        for (var n = firstNumber; n < firstNumber + count; n++)
        {
            var ack = await sender.RequestAsync(new { type = "sendMessage", text = $"m{n}" }, cancellationToken);
            Assert.That(ack.Ok, Is.True, ack.Raw);
        }

        return signin.Epoch!;
    }
}
