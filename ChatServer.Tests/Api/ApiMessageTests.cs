using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.Api;

/// <summary>
/// The server API's message endpoints against two instances on one Redis and one PostgreSQL: a post is a
/// <c>sendMessage</c> (numbering, delivery on both instances, the idempotency key), pages and searches are the
/// protocol's frames, a delete and an erasure make tombstones everywhere and members hear <c>deleted</c>.
/// </summary>
public sealed class ApiMessageTests : ApiFixture
{
    [Test, CancelAfter(20_000)]
    public async Task A_post_reaches_members_on_both_instances_exactly_like_a_sendMessage(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api post");
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        using var http = Api(HostA);

        using var response = await http.PostAsync(Path(room), Json("""{"user":"  deploy-bot ","text":"build 42 is out ✓","extra":1}"""), cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created), body);
        var posted = new Frame(body);
        var atAlice = await alice.ExpectAsync(f => f.Type == "message", cancellationToken);
        var atBob = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That(atBob.Raw, Is.EqualTo(atAlice.Raw), "the same stored bytes on both instances");
        Assert.That((atAlice.Room, atAlice.User, atAlice.Text), Is.EqualTo((room, "deploy-bot", "build 42 is out ✓")), "trimmed as a signin's user");
        Assert.That((posted.Room, posted.Seq, posted.Epoch, posted.Ts), Is.EqualTo((room, atAlice.Seq, atAlice.Epoch, atAlice.Ts)));
        Assert.That(posted.Root.TryGetProperty("duplicate", out _), Is.False);
        Assert.That(response.Headers.Location?.OriginalString, Is.EqualTo($"{Path(room)}/{atAlice.Epoch}/{atAlice.Seq}"));

        // The same numbering as sendMessage, and the same shape of stored message.
        var sent = await alice.RequestAsync(new { type = "sendMessage", text = "thanks" }, cancellationToken);
        Assert.That(sent.Seq, Is.EqualTo(posted.Seq + 1));
        var sentFrame = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That(sentFrame.Root.EnumerateObject().Select(p => p.Name), Is.EqualTo(atAlice.Root.EnumerateObject().Select(p => p.Name)));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_post_with_a_key_twice_on_two_instances_stores_one_message_and_the_repeat_answers_the_first(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api key");
        await using var carol = await ChatClient.SignInAsync(HostB.WebSocketUri, "carol", room, cancellationToken);
        using var httpA = Api(HostA);
        using var httpB = Api(HostB, SecondKey);

        var first = await PostAsync(httpA, room, "deploy-bot", "once", cancellationToken, key: "deploy-42");
        var delivered = await carol.ExpectAsync(f => f.Type == "message", cancellationToken);
        await Task.Delay(20, cancellationToken);   // a later attempt, so a ts of its own would differ
        using var again = await httpB.PostAsync(Path(room), Json(new { user = "deploy-bot", text = "once (resent)", key = "deploy-42" }), cancellationToken);
        var repeat = new Frame(await again.Content.ReadAsStringAsync(cancellationToken));

        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.OK), repeat.Raw);
        Assert.That(repeat.Root.GetProperty("duplicate").GetBoolean(), Is.True);
        Assert.That((repeat.Room, repeat.Seq, repeat.Epoch, repeat.Ts),
            Is.EqualTo((room, first.GetProperty("seq").GetInt64(), first.GetProperty("epoch").GetString(), first.GetProperty("ts").GetString())));
        Assert.That(repeat.Ts, Is.EqualTo(delivered.Ts));

        // The same rule as sendMessage: that user's key from a WebSocket is the same message; another user's is not.
        await using var bot = await ChatClient.SignInAsync(HostA.WebSocketUri, "deploy-bot", room, cancellationToken);
        var fromSocket = await bot.RequestAsync(new { type = "sendMessage", text = "once", key = "deploy-42" }, cancellationToken);
        Assert.That((fromSocket.Seq, fromSocket.Root.GetProperty("duplicate").GetBoolean()), Is.EqualTo((repeat.Seq, true)));
        var other = await PostAsync(httpA, room, "other-bot", "mine", cancellationToken, key: "deploy-42");
        Assert.That(other.GetProperty("seq").GetInt64(), Is.EqualTo(repeat.Seq + 1));

        Assert.That((await carol.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("mine"), "nothing between");
        var page = await PageAsync(httpB, room, "", cancellationToken);
        Assert.That(page.Messages.Select(m => m.Text), Is.EqualTo(new[] { "once", "mine" }));
    }

    [Test, CancelAfter(30_000)]
    public async Task Pages_and_searches_equal_the_protocols_history_and_search_frames(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api pages");
        using var http = Api(HostB);
        for (var i = 1; i <= 7; i++)
        {
            await PostAsync(http, room, i % 2 == 0 ? "even" : "odd", $"message {i} {(i % 3 == 0 ? "fizz" : "plain")}", cancellationToken);
        }

        await using var reader = await ChatClient.SignInAsync(HostA.WebSocketUri, "reader", room, cancellationToken);
        var newest = await PageAsync(http, room, "?limit=3", cancellationToken);
        var newestFrame = await reader.RequestAsync(new { type = "history", limit = 3 }, cancellationToken);
        Assert.That(newest.Messages.Select(m => m.Raw), Is.EqualTo(newestFrame.Messages.Select(m => m.Raw)));
        Assert.That((newest.Room, newest.Epoch, newest.Root.GetProperty("more").GetBoolean()), Is.EqualTo((room, newestFrame.Epoch, true)));
        Assert.That(newest.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 5, 6, 7 }));

        var older = await PageAsync(http, room, $"?before=5&epoch={newest.Epoch}&limit=100", cancellationToken);
        var olderFrame = await reader.RequestAsync(new { type = "history", before = 5, epoch = newest.Epoch, limit = 100 }, cancellationToken);
        Assert.That(older.Messages.Select(m => m.Raw), Is.EqualTo(olderFrame.Messages.Select(m => m.Raw)));
        Assert.That((older.Messages.Count, older.Root.GetProperty("more").GetBoolean()), Is.EqualTo((4, false)));
        var defaults = await PageAsync(http, room, "?before=&epoch=&limit=&q=", cancellationToken);
        Assert.That(defaults.Messages, Has.Count.EqualTo(7), "empty parameters count as absent");

        await WaitUntilAsync(async () => await ScalarAsync<long>("select count(*) from chat_messages where room = $1", room) == 7, cancellationToken);
        var found = await PageAsync(http, room, "?q=fizz", cancellationToken);
        var foundFrame = await reader.RequestAsync(new { type = "search", q = "fizz" }, cancellationToken);
        Assert.That(found.Messages.Select(m => m.Raw), Is.EqualTo(foundFrame.Messages.Select(m => m.Raw)));
        Assert.That(found.Messages.Select(m => m.Seq), Is.EqualTo(new long?[] { 6, 3 }), "newest first");
        var next = await PageAsync(http, room, $"?q=message&limit=2&before=6&epoch={newest.Epoch}", cancellationToken);
        var nextFrame = await reader.RequestAsync(new { type = "search", q = "message", limit = 2, before = 6, epoch = newest.Epoch }, cancellationToken);
        Assert.That(next.Messages.Select(m => m.Raw), Is.EqualTo(nextFrame.Messages.Select(m => m.Raw)));
        Assert.That((next.Messages.Select(m => m.Seq), next.Root.GetProperty("more").GetBoolean()), Is.EqualTo((new long?[] { 5, 4 }, true)));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_delete_makes_a_tombstone_in_every_store_and_members_on_both_instances_hear_deleted(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api delete");
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        var sent = await alice.RequestAsync(new { type = "sendMessage", text = "spam spam", key = "k-spam" }, cancellationToken);
        var message = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        using var http = Api(HostB);

        using var deleted = await http.DeleteAsync($"{Path(room)}/{message.Epoch}/{sent.Seq}", cancellationToken);

        Assert.That(deleted.StatusCode, Is.EqualTo(HttpStatusCode.NoContent), await deleted.Content.ReadAsStringAsync(cancellationToken));
        foreach (var member in new[] { alice, bob })
        {
            var frame = await member.ExpectAsync(f => f.Type == "deleted", cancellationToken);
            Assert.That((frame.Room, frame.Seq, frame.Epoch), Is.EqualTo((room, sent.Seq, message.Epoch)));
        }

        var tombstone = (await PageAsync(http, room, "", cancellationToken)).Messages.Single();
        Assert.That((tombstone.User, tombstone.Ts, tombstone.Text, tombstone.Root.GetProperty("deleted").GetBoolean()),
            Is.EqualTo(("alice", message.Ts, (string?)null, true)));
        Assert.That(tombstone.Root.TryGetProperty("key", out _), Is.False);
        await WaitUntilAsync(async () => await ScalarAsync<long>(
            "select count(*) from chat_messages where room = $1 and deleted and text is null and body not like '%spam%'", room) == 1, cancellationToken);

        // Again: already a tombstone, still 204, and nothing is announced (the sentinel comes next).
        using var again = await http.DeleteAsync($"{Path(room)}/{message.Epoch}/{sent.Seq}", cancellationToken);
        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That((await bob.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"));

        using var unknownSeq = await http.DeleteAsync($"{Path(room)}/{message.Epoch}/99", cancellationToken);
        Assert.That(await ProblemAsync(unknownSeq, HttpStatusCode.NotFound, cancellationToken),
            Is.EqualTo($"Message 99 of epoch '{message.Epoch}' is not in this room's history."));
        using var unknownEpoch = await http.DeleteAsync($"{Path(room)}/older%20one/1", cancellationToken);
        Assert.That(await ProblemAsync(unknownEpoch, HttpStatusCode.NotFound, cancellationToken),
            Is.EqualTo("Message 1 of epoch 'older one' is not in this room's history."));
    }

    [Test, CancelAfter(40_000)]
    public async Task An_erasure_tombstones_every_message_of_the_user_in_redis_and_postgresql_and_no_one_elses(CancellationToken cancellationToken)
    {
        var (general, random, old) = (TestNames.Room("erase general"), TestNames.Room("erase random"), TestNames.Room("erase old"));
        var mallory = $"mallory-{Guid.NewGuid():N}"[..20];
        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", general, cancellationToken);
        await using var carol = await ChatClient.SignInAsync(HostB.WebSocketUri, "carol", old, cancellationToken);
        using var http = Api(HostA);
        var malloryPosts = new List<(string Room, long Seq)>();
        foreach (var room in new[] { general, random, general })
        {
            var posted = await PostAsync(http, room, mallory, "personal data", cancellationToken);
            malloryPosts.Add((room, posted.GetProperty("seq").GetInt64()));
            await PostAsync(http, room, "bob", "bob's words", cancellationToken);
        }

        // An older epoch of a room that only the database still holds (the log lost it): a message of mallory's and one of bob's.
        await using (var database = new Npgsql.NpgsqlConnection(Database))
        {
            await database.OpenAsync(cancellationToken);
            foreach (var (user, seq) in new[] { (mallory, 1L), ("bob", 2L) })
            {
                var body = JsonSerializer.Serialize(new { type = "message", room = old, user, text = "archived words", ts = "2026-01-02T03:04:05.678Z", seq, epoch = "oldepoch01" });
                await using var insert = new Npgsql.NpgsqlCommand(
                    "insert into chat_messages (room, epoch, seq, user_name, ts, body, text) values ($1, 'oldepoch01', $2, $3, '2026-01-02T03:04:05.678Z', $4, 'archived words')",
                    database);
                insert.Parameters.Add(new Npgsql.NpgsqlParameter { Value = old });
                insert.Parameters.Add(new Npgsql.NpgsqlParameter { Value = seq });
                insert.Parameters.Add(new Npgsql.NpgsqlParameter { Value = user });
                insert.Parameters.Add(new Npgsql.NpgsqlParameter { Value = body });
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
        }

        using var response = await Api(HostB).DeleteAsync($"/api/users/{Uri.EscapeDataString(mallory)}/messages", cancellationToken);

        var answer = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted), answer);
        Assert.That(JsonDocument.Parse(answer).RootElement.GetProperty("deleted").GetInt64(), Is.EqualTo(4));

        // Live members hear of it: in general (log) both of mallory's, in old (database only) the archived one.
        var heard = new List<long?>();
        while (heard.Count < 2)
        {
            heard.Add((await alice.ExpectAsync(f => f.Type == "deleted", cancellationToken)).Seq);
        }

        Assert.That(heard, Is.EquivalentTo(malloryPosts.Where(p => p.Room == general).Select(p => (long?)p.Seq)));
        var archived = await carol.ExpectAsync(f => f.Type == "deleted", cancellationToken);
        Assert.That((archived.Room, archived.Epoch, archived.Seq), Is.EqualTo((old, "oldepoch01", 1L)));

        // The log: mallory's messages are tombstones, bob's are whole.
        foreach (var room in new[] { general, random })
        {
            var page = await PageAsync(http, room, "", cancellationToken);
            var hers = page.Messages.Where(m => m.User == mallory).Select(m => (m.Text, m.Root.GetProperty("deleted").GetBoolean())).ToList();
            Assert.That(hers, Has.Count.EqualTo(malloryPosts.Count(p => p.Room == room)));
            Assert.That(hers, Has.All.EqualTo(((string?)null, true)));
            Assert.That(page.Messages.Where(m => m.User == "bob").Select(m => m.Text), Has.All.EqualTo("bob's words"));
        }

        // The database, once the archive has caught up with everything posted (a message arriving after its
        // tombstone must not bring the text back): no word of mallory's, every word of bob's.
        await WaitUntilAsync(async () => await ScalarAsync<long>(
            "select count(*) from chat_messages where room = any($1)", (object)new[] { general, random }) == 6, cancellationToken);
        Assert.That(await ScalarAsync<long>("select count(*) from chat_messages where user_name = $1 and (not deleted or text is not null or body like '%personal data%' or body like '%archived words%')", mallory),
            Is.Zero);
        Assert.That(await ScalarAsync<long>("select count(*) from chat_messages where user_name = $1 and deleted", mallory), Is.EqualTo(4));
        Assert.That(await ScalarAsync<long>("select count(*) from chat_messages where user_name = 'bob' and room = any($1) and not deleted",
            (object)new[] { general, random, old }), Is.EqualTo(4));
        var oldPage = await PageAsync(http, old, "?epoch=oldepoch01&before=10", cancellationToken);
        Assert.That(oldPage.Messages.Select(m => (m.User, m.Text)), Is.EqualTo(new[] { (mallory, (string?)null), ("bob", "archived words") }));

        // Nothing more to do the second time.
        using var again = await http.DeleteAsync($"/api/users/{Uri.EscapeDataString(mallory)}/messages", cancellationToken);
        Assert.That(JsonDocument.Parse(await again.Content.ReadAsStringAsync(cancellationToken)).RootElement.GetProperty("deleted").GetInt64(), Is.Zero);
    }

    [Test, CancelAfter(20_000)]
    public async Task The_openapi_document_is_public_and_describes_every_api_endpoint_the_server_maps(CancellationToken cancellationToken)
    {
        using var anonymous = Client(HostA, bearer: null);
        using var response = await anonymous.GetAsync("/api/openapi.json", cancellationToken);
        var json = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), json);
        using var document = JsonDocument.Parse(json);
        var paths = document.RootElement.GetProperty("paths");

        // Every endpoint under /api the server routes (whoever adds one later), by method and path, is in the document.
        var mapped = HostA.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints
            .OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/api/", StringComparison.Ordinal) == true && e.RoutePattern.RawText != "/api/openapi.json")
            .SelectMany(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IHttpMethodMetadata>()!.HttpMethods
                .Select(method => $"{method.ToLowerInvariant()} {e.RoutePattern.RawText!.Replace("//", "/", StringComparison.Ordinal).TrimEnd('/')}"))
            .ToList();
        var documented = paths.EnumerateObject().SelectMany(p => p.Value.EnumerateObject().Select(o => $"{o.Name} {p.Name}")).ToList();
        Assert.That(mapped, Is.SupersetOf(new[]
        {
            "post /api/rooms/{room}/messages", "get /api/rooms/{room}/messages", "delete /api/rooms/{room}/messages/{epoch}/{seq}",
            "delete /api/users/{user}/messages",
        }));
        Assert.That(documented, Is.EquivalentTo(mapped));

        var post = paths.GetProperty("/api/rooms/{room}/messages").GetProperty("post");
        Assert.That(post.GetProperty("responses").EnumerateObject().Select(r => r.Name), Is.SupersetOf(new[] { "201", "200", "400", "401", "413", "503" }));
        Assert.That(post.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema")
            .GetProperty("properties").EnumerateObject().Select(p => p.Name), Is.EquivalentTo(new[] { "user", "text", "key" }));
        Assert.That(document.RootElement.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer").GetProperty("scheme").GetString(),
            Is.EqualTo("bearer"));
    }
}
