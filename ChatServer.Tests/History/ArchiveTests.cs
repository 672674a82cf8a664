using StackExchange.Redis;

namespace ChatServer.Tests.History;

/// <summary>
/// The history database behind two instances (PROTOCOL.md "History that outlives Redis"): every acknowledged message
/// reaches it once, pages continue from Redis into it across a trim and an epoch change, search, and deletes.
/// </summary>
public sealed class ArchiveTests : HistoryDatabaseFixture
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:HistoryLength"] = "5",
        ["Chat:RateLimitPerSecond"] = "1000",
        ["Chat:RateLimitBurst"] = "1000",
    };

    [Test, CancelAfter(60_000)]
    public async Task A_thousand_messages_from_senders_on_both_instances_reach_the_database_once_each(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var senders = new List<ChatClient>();
        for (var i = 0; i < 4; i++)
        {
            senders.Add(await ChatClient.SignInAsync((i % 2 == 0 ? HostA : HostB).WebSocketUri, $"sender{i}", room, cancellationToken));
        }

        var acked = await Task.WhenAll(senders.Select(async (sender, i) =>
        {
            var seqs = new List<long>();
            for (var n = 0; n < 250; n++)
            {
                var ack = await sender.RequestAsync(new { type = "sendMessage", text = $"s{i} n{n}" }, cancellationToken);
                Assert.That(ack.Ok, Is.True, ack.Raw);
                seqs.Add(ack.Seq!.Value);
            }

            return seqs;
        }));

        await WaitUntilAsync(async () => await ArchivedCountAsync(room) >= 1_000, cancellationToken);
        Assert.That(acked.SelectMany(s => s).Order(), Is.EqualTo(Enumerable.Range(1, 1_000).Select(i => (long)i)));
        Assert.That(await ScalarAsync<long>("select count(distinct seq) from chat_messages where room = $1 and seq between 1 and 1000", room),
            Is.EqualTo(1_000));
        Assert.That(await ArchivedCountAsync(room), Is.EqualTo(1_000), "stored once each");
        Assert.That(await ScalarAsync<string>("select body from chat_messages where room = $1 and seq = 1", room), Does.Contain("\"seq\":1,"));
        foreach (var sender in senders)
        {
            await sender.DisposeAsync();
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task A_room_pages_from_its_newest_to_its_first_message_across_a_trim_and_an_epoch_change(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        for (var i = 1; i <= 12; i++)   // Redis keeps the newest 5
        {
            await alice.RequestAsync(new { type = "sendMessage", text = $"first epoch {i}" }, cancellationToken);
        }

        await WaitUntilAsync(async () => await ArchivedCountAsync(room) == 12, cancellationToken);

        // Redis loses the room (a restart without persistence): the next message starts a new epoch.
        await using (var redis = await ConnectionMultiplexer.ConnectAsync(TestRedis.ConnectionString))
        {
            await redis.GetDatabase().KeyDeleteAsync([$"{KeyPrefix}{{{room}}}:meta", $"{KeyPrefix}{{{room}}}:history"]);
        }

        for (var i = 1; i <= 7; i++)
        {
            await bob.RequestAsync(new { type = "sendMessage", text = $"second epoch {i}" }, cancellationToken);
        }

        await WaitUntilAsync(async () => await ArchivedCountAsync(room) == 19, cancellationToken);

        var all = await PageEverythingAsync(alice, limit: 4, cancellationToken);

        Assert.That(all.Select(m => m.Text), Is.EqualTo(
            Enumerable.Range(1, 12).Select(i => $"first epoch {i}").Concat(Enumerable.Range(1, 7).Select(i => $"second epoch {i}"))));
        Assert.That(all.Select(m => m.Epoch).Distinct().Count(), Is.EqualTo(2));
        Assert.That(all.Take(12).Select(m => m.Seq), Is.EqualTo(Enumerable.Range(1, 12).Select(i => (long?)i)));
        Assert.That(all.Skip(12).Select(m => m.Seq), Is.EqualTo(Enumerable.Range(1, 7).Select(i => (long?)i)));
    }

    [Test, CancelAfter(60_000)]
    public async Task Search_finds_words_newest_first_in_its_room_only_and_skips_tombstones(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var otherRoom = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var elsewhere = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", otherRoom, cancellationToken);
        string[] texts = ["the release notes are out", "lunch?", "Release day tomorrow", "notes from the meeting", "release notes v2"];
        foreach (var text in texts)
        {
            await alice.RequestAsync(new { type = "sendMessage", text }, cancellationToken);
        }

        await elsewhere.RequestAsync(new { type = "sendMessage", text = "release notes in another room" }, cancellationToken);
        var doomed = await alice.RequestAsync(new { type = "sendMessage", text = "release notes draft, delete me" }, cancellationToken);
        var epoch = (await alice.ExpectAsync(f => f.Type == "message" && f.Seq == doomed.Seq, cancellationToken)).Epoch;
        await WaitUntilAsync(async () => await ArchivedCountAsync(room) == 6, cancellationToken);
        Assert.That((await alice.RequestAsync(new { type = "deleteMessage", seq = doomed.Seq, epoch }, cancellationToken)).Ok, Is.True);
        await WaitUntilAsync(async () => await ScalarAsync<long>("select count(*) from chat_messages where room = $1 and deleted", room) == 1,
            cancellationToken);

        var found = await alice.RequestAsync(new { type = "search", q = "release notes" }, cancellationToken);
        Assert.That(found.Ok, Is.True, found.Raw);
        Assert.That(found.Messages.Select(m => m.Text), Is.EqualTo(new[] { "release notes v2", "the release notes are out" }));
        Assert.That(found.Root.GetProperty("more").GetBoolean(), Is.False);

        var firstPage = await alice.RequestAsync(new { type = "search", q = "release", limit = 1 }, cancellationToken);
        Assert.That((firstPage.Messages.Single().Text, firstPage.Root.GetProperty("more").GetBoolean()), Is.EqualTo(("release notes v2", true)));
        var last = firstPage.Messages.Single();
        var rest = await alice.RequestAsync(new { type = "search", q = "release", limit = 5, before = last.Seq, epoch = last.Epoch }, cancellationToken);
        Assert.That(rest.Messages.Select(m => m.Text), Is.EqualTo(new[] { "Release day tomorrow", "the release notes are out" }));
    }

    [TestCase("""{"type":"search","id":1}""", "Field 'q' is required and must be a string.")]
    [TestCase("""{"type":"search","id":1,"q":"   "}""", "Field 'q' must be 1 to 200 characters, not only white space (it has 3).")]
    [TestCase("""{"type":"search","id":1,"q":"a","limit":51}""", "Field 'limit' must be an integer from 1 to 50.")]
    [TestCase("""{"type":"search","id":1,"q":5}""", "Field 'q' must be a string.")]
    [CancelAfter(15_000)]
    public async Task Bad_search_frames_name_the_field(string frame, string error, CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.SignInAsync(HostA.WebSocketUri, "a", TestNames.Room(), cancellationToken);
        await client.SendRawAsync(frame, cancellationToken);
        var ack = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
        Assert.That((ack.Ok, ack.Error), Is.EqualTo((false, error)));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_delete_reaches_every_member_on_both_instances_and_every_store(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        for (var i = 1; i <= 8; i++)   // seq 1..3 only in the database afterwards; 4..8 in Redis too
        {
            await alice.RequestAsync(new { type = "sendMessage", text = $"secret {i}", key = $"key-{i}" }, cancellationToken);
        }

        var epoch = (await bob.ExpectAsync(f => f.Type == "message" && f.Seq == 8, cancellationToken)).Epoch;
        await WaitUntilAsync(async () => await ArchivedCountAsync(room) == 8, cancellationToken);

        foreach (var seq in new long[] { 2, 7 })   // one only in the database, one in both stores
        {
            var ack = await alice.RequestAsync(new { type = "deleteMessage", seq, epoch }, cancellationToken);
            Assert.That(ack.Ok, Is.True, ack.Raw);
            foreach (var member in new[] { alice, bob })
            {
                Assert.That((await member.ExpectAsync(f => f.Type == "deleted", cancellationToken)).Seq, Is.EqualTo(seq));
            }
        }

        await WaitUntilAsync(async () => await ScalarAsync<long>("select count(*) from chat_messages where room = $1 and deleted", room) == 2,
            cancellationToken);
        Assert.That(await ScalarAsync<long>("select count(*) from chat_messages where room = $1 and (text is not null or body like '%secret%' or body like '%key-%') and seq in (2, 7)", room),
            Is.Zero, "text and key are gone from the database");
        var all = await PageEverythingAsync(bob, limit: 3, cancellationToken);
        Assert.That(all.Select(m => m.Text), Is.EqualTo(new[] { "secret 1", null, "secret 3", "secret 4", "secret 5", "secret 6", null, "secret 8" }));
        await using (var redis = await ConnectionMultiplexer.ConnectAsync(TestRedis.ConnectionString))
        {
            var kept = await redis.GetDatabase().ListRangeAsync($"{KeyPrefix}{{{room}}}:history");
            Assert.That(kept.Select(v => v.ToString()).Where(v => v.Contains("secret 7", StringComparison.Ordinal) || v.Contains("key-7", StringComparison.Ordinal)),
                Is.Empty, "the text and key are gone from Redis");
        }
    }
}
