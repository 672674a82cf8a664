using System.Net;
using ChatServer.Tests.Faults;

namespace ChatServer.Tests.Api;

/// <summary>
/// 503 answers: a message store that is down (nothing was stored), and a history database that does not answer (the
/// chat and posts go on; what needs the database says so, an erasure says how far it got).
/// </summary>
public sealed class ApiOutageTests
{
    private const string Key = "outage-test-key-0123456789";

    [Test, CancelAfter(60_000)]
    public async Task While_the_message_store_is_down_posts_pages_and_erasures_get_503_saying_nothing_was_stored(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var host = new ChatHost(redis.ConnectionString, new Dictionary<string, string?> { ["Api:Keys:0"] = Key });
        using var http = ApiFixture.Client(host, Key);
        var room = TestNames.Room("api outage");
        await ApiFixture.PostAsync(http, room, "bot", "before", cancellationToken);

        await redis.SaveAndStopAsync();
        await FaultHelpers.WaitReadyAsync(host, HttpStatusCode.ServiceUnavailable, cancellationToken);

        using var post = await http.PostAsync(ApiFixture.Path(room), ApiFixture.Json(new { user = "bot", text = "during" }), cancellationToken);
        Assert.That(await ApiFixture.ProblemAsync(post, HttpStatusCode.ServiceUnavailable, cancellationToken),
            Is.EqualTo("The message store is unavailable; nothing was stored. Try again shortly."));
        using var keyed = await http.PostAsync(ApiFixture.Path(room), ApiFixture.Json(new { user = "bot", text = "during", key = "k1" }), cancellationToken);
        Assert.That(await ApiFixture.ProblemAsync(keyed, HttpStatusCode.ServiceUnavailable, cancellationToken),
            Is.EqualTo("The message store is unavailable; nothing was stored. Try again shortly."));
        using var page = await http.GetAsync(ApiFixture.Path(room), cancellationToken);
        Assert.That(await ApiFixture.ProblemAsync(page, HttpStatusCode.ServiceUnavailable, cancellationToken),
            Is.EqualTo("The message store is unavailable; nothing was stored. Try again shortly."), "the frames' sentence for any store failure");
        using var erase = await http.DeleteAsync("/api/users/bot/messages", cancellationToken);
        Assert.That(await ApiFixture.ProblemAsync(erase, HttpStatusCode.ServiceUnavailable, cancellationToken),
            Is.EqualTo("The message store is unavailable; the erasure did not finish. Try again shortly: repeating an erasure is safe."));

        await redis.StartAgainAsync();
        await FaultHelpers.WaitReadyAsync(host, HttpStatusCode.OK, cancellationToken);
        var after = await ApiFixture.PostAsync(http, room, "bot", "after", cancellationToken);
        Assert.That(after.GetProperty("seq").GetInt64(), Is.EqualTo(2), "nothing was stored while it was down");
    }

    [Test, CancelAfter(60_000)]
    public async Task While_the_history_database_does_not_answer_posts_go_on_and_what_needs_it_gets_503(CancellationToken cancellationToken)
    {
        var unreachable = $"Host=127.0.0.1;Port={RedisServerProcess.FreePort()};Database=nowhere;Username=chat;Timeout=1;Pooling=false";
        await using var host = new ChatHost(TestRedis.ConnectionString, new Dictionary<string, string?>
        {
            ["Api:Keys:0"] = Key,
            ["History:ConnectionString"] = unreachable,
            ["Redis:KeyPrefix"] = $"outage{Guid.NewGuid():N}:",
        });
        using var http = ApiFixture.Client(host, Key);
        var room = TestNames.Room("api db outage");
        var user = $"u-{Guid.NewGuid():N}"[..20];
        var posted = await ApiFixture.PostAsync(http, room, user, "the chat goes on", cancellationToken);
        var epoch = posted.GetProperty("epoch").GetString();

        var cases = new (HttpMethod Method, string Path, string Detail)[]
        {
            (HttpMethod.Get, ApiFixture.Path(room) + "?q=chat", "The history database is unavailable; search cannot run now. Try again shortly."),
            (HttpMethod.Get, ApiFixture.Path(room) + "?epoch=olderepoch&before=5",
                "The history database is unavailable; older messages cannot be read now. Try again shortly."),
            (HttpMethod.Delete, $"{ApiFixture.Path(room)}/{epoch}/7", "The history database is unavailable; nothing was deleted. Try again shortly."),
            (HttpMethod.Delete, $"/api/users/{user}/messages",
                "The history database is unavailable: 1 messages were erased, but those only the database holds were not. Try again shortly: repeating an erasure is safe."),
        };
        foreach (var (method, path, detail) in cases)
        {
            using var response = await http.SendAsync(new HttpRequestMessage(method, path), cancellationToken);
            Assert.That(await ApiFixture.ProblemAsync(response, HttpStatusCode.ServiceUnavailable, cancellationToken), Is.EqualTo(detail), path);
        }

        // The log's part of the erasure is done (a page would need the database to tell it has no more; a sign-in does not).
        await using var reader = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        var joined = await reader.RequestAsync(new { type = "signin", user = "reader", room }, cancellationToken);
        Assert.That(joined.Messages.Single().Root.GetProperty("deleted").GetBoolean(), Is.True, joined.Raw);
    }
}
