using System.Net;
using System.Text;

namespace ChatServer.Tests.Api;

/// <summary>
/// The server API's request rules (docs/API.md, "Endpoints"): every field by the protocol's own rules and sentences
/// (400 naming the field), bodies of at most 16 KiB (413), JSON only (415), path segments escaped, trimmed and checked
/// like the protocol's names; without the history database, pages come from the log and a search is 501.
/// </summary>
public sealed class ApiRequestTests : ApiFixture
{
    protected override bool WithDatabase => false;

    [TestCase("""{"text":"hi"}""", "Field 'user' is required and must be a string.")]
    [TestCase("""{"user":7,"text":"hi"}""", "Field 'user' must be a string.")]
    [TestCase("""{"user":"   ","text":"hi"}""", "Field 'user' must be 1 to 32 characters after trimming (it has 0).")]
    [TestCase("""{"user":"abcdefghijklmnopqrstuvwxyz0123456","text":"hi"}""", "Field 'user' must be 1 to 32 characters after trimming (it has 33).")]
    [TestCase("""{"user":"a\u0007b","text":"hi"}""", "Field 'user' must not contain control characters.")]
    [TestCase("""{"user":"bot"}""", "Field 'text' is required and must be a string.")]
    [TestCase("""{"user":"bot","text":["hi"]}""", "Field 'text' must be a string.")]
    [TestCase("""{"user":"bot","text":" \n "}""", "Field 'text' must not be only white space.")]
    [TestCase("""{"user":"bot","text":"\ud800"}""", "Field 'text' must be valid Unicode (no unpaired surrogates).")]
    [TestCase("""{"user":"bot","text":"a\u0000b"}""", "Field 'text' must not contain control characters (tab, CR and LF are allowed).")]
    [TestCase("""{"user":"bot","text":"hi","key":"has space"}""", "Field 'key' must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.")]
    [TestCase("""{"user":"bot","text":"hi","key":42}""", "Field 'key' must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.")]
    [TestCase("""{"user":"bot","text":"hi","key":""}""", "Field 'key' must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.")]
    [TestCase("""{"user":"bot","text":"hi""", "The body is not valid JSON: send one UTF-8 JSON object.")]
    [TestCase("""["bot","hi"]""", "The body must be a JSON object.")]
    [CancelAfter(15_000)]
    public async Task A_bad_post_body_gets_400_naming_the_field_with_the_protocols_sentence_and_stores_nothing(string body, string detail,
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api 400");
        using var http = Api(HostA);
        using var response = await http.PostAsync(Path(room), Json(body), cancellationToken);
        Assert.That(await ProblemAsync(response, HttpStatusCode.BadRequest, cancellationToken), Is.EqualTo(detail));
        Assert.That((await PageAsync(http, room, "", cancellationToken)).Messages, Is.Empty);
    }

    [Test, CancelAfter(15_000)]
    public async Task The_same_text_rule_as_sendMessage_with_the_same_sentence(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api text");
        var tooLong = new string('é', 2_001);
        await using var client = await ChatClient.SignInAsync(HostA.WebSocketUri, "bot", room, cancellationToken);
        var frame = await client.RequestAsync(new { type = "sendMessage", text = tooLong }, cancellationToken);
        using var response = await Api(HostB).PostAsync(Path(room), Json(new { user = "bot", text = tooLong }), cancellationToken);
        Assert.That(await ProblemAsync(response, HttpStatusCode.BadRequest, cancellationToken),
            Is.EqualTo(frame.Error).And.EqualTo("Field 'text' must be 1 to 2000 characters (it has 2001)."));
    }

    [Test, CancelAfter(15_000)]
    public async Task Bodies_over_16_KiB_get_413_and_a_body_of_exactly_16_KiB_is_read(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api 413");
        using var http = Api(HostA);
        var json = """{"user":"bot","text":"fits"}""";
        var exact = json + new string(' ', 16 * 1024 - json.Length);
        Assert.That(Encoding.UTF8.GetByteCount(exact), Is.EqualTo(16_384));
        await PostAsync(http, room, "bot", "fits", cancellationToken);   // (the helper's own body, for comparison)
        using (var fits = await http.PostAsync(Path(room), Json(exact), cancellationToken))
        {
            Assert.That(fits.StatusCode, Is.EqualTo(HttpStatusCode.Created), await fits.Content.ReadAsStringAsync(cancellationToken));
        }

        using var over = await http.PostAsync(Path(room), Json(exact + " "), cancellationToken);
        Assert.That(await ProblemAsync(over, HttpStatusCode.RequestEntityTooLarge, cancellationToken),
            Is.EqualTo("The body must be at most 16384 bytes (16 KiB)."));

        // Without a Content-Length (chunked), the limit holds all the same.
        using var chunked = new HttpRequestMessage(HttpMethod.Post, Path(room))
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(exact + "  "))),
        };
        chunked.Content.Headers.ContentType = new("application/json");
        chunked.Headers.TransferEncodingChunked = true;
        using var chunkedResponse = await http.SendAsync(chunked, cancellationToken);
        Assert.That(await ProblemAsync(chunkedResponse, HttpStatusCode.RequestEntityTooLarge, cancellationToken),
            Is.EqualTo("The body must be at most 16384 bytes (16 KiB)."));
        Assert.That((await PageAsync(http, room, "", cancellationToken)).Messages, Has.Count.EqualTo(2));
    }

    [Test, CancelAfter(15_000)]
    public async Task A_body_that_is_not_json_gets_415(CancellationToken cancellationToken)
    {
        using var response = await Api(HostA).PostAsync(Path(TestNames.Room()),
            new StringContent("user=bot&text=hi", Encoding.UTF8, "application/x-www-form-urlencoded"), cancellationToken);
        Assert.That(await ProblemAsync(response, HttpStatusCode.UnsupportedMediaType, cancellationToken),
            Is.EqualTo("Send the body as JSON, with Content-Type: application/json."));
    }

    [Test, CancelAfter(15_000)]
    public async Task Room_and_user_in_the_path_are_unescaped_trimmed_and_checked_like_the_protocols_names(CancellationToken cancellationToken)
    {
        using var http = Api(HostA);
        var slashed = $"team/{Guid.NewGuid():N}";
        var percent = $"team%2F{slashed[5..]}";   // a room whose name holds the three characters %2F, not a slash
        await using var member = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", slashed, cancellationToken);
        using (var response = await http.PostAsync($"/api/rooms/%20{Uri.EscapeDataString(slashed)}%20/messages", Json(new { user = "bot", text = "to the slashed room" }),
                   cancellationToken))
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        }

        Assert.That((await member.ExpectAsync(f => f.Type == "message", cancellationToken)).Room, Is.EqualTo(slashed));
        var posted = await PostAsync(http, percent, "bot", "to the other room", cancellationToken);
        Assert.That(posted.GetProperty("room").GetString(), Is.EqualTo(percent));
        Assert.That((await PageAsync(http, slashed, "", cancellationToken)).Messages.Select(m => m.Text), Is.EqualTo(new[] { "to the slashed room" }));

        var cases = new (HttpMethod Method, string Path, string Detail)[]
        {
            (HttpMethod.Post, "/api/rooms/%20%20/messages", "Field 'room' must be 1 to 64 characters after trimming (it has 0)."),
            (HttpMethod.Get, $"/api/rooms/{new string('r', 65)}/messages", "Field 'room' must be 1 to 64 characters after trimming (it has 65)."),
            (HttpMethod.Get, "/api/rooms/a%07b/messages", "Field 'room' must not contain control characters."),
            (HttpMethod.Delete, "/api/rooms/%09/messages/e/1", "Field 'room' must be 1 to 64 characters after trimming (it has 0)."),
            (HttpMethod.Delete, $"/api/users/{new string('u', 33)}/messages", "Field 'user' must be 1 to 32 characters after trimming (it has 33)."),
            (HttpMethod.Delete, "/api/users/%20/messages", "Field 'user' must be 1 to 32 characters after trimming (it has 0)."),
        };
        foreach (var (method, path, detail) in cases)
        {
            using var request = new HttpRequestMessage(method, path);
            if (method == HttpMethod.Post)
            {
                request.Content = Json(new { user = "bot", text = "hi" });
            }

            using var response = await http.SendAsync(request, cancellationToken);
            Assert.That(await ProblemAsync(response, HttpStatusCode.BadRequest, cancellationToken), Is.EqualTo(detail), path);
        }
    }

    [TestCase("?limit=0", "Field 'limit' must be an integer from 1 to 100.")]
    [TestCase("?limit=101", "Field 'limit' must be an integer from 1 to 100.")]
    [TestCase("?limit=ten", "Field 'limit' must be an integer from 1 to 100.")]
    [TestCase("?q=x&limit=51", "Field 'limit' must be an integer from 1 to 50.")]
    [TestCase("?before=-1", "Field 'before' must be an integer >= 0 (a seq; older messages are returned).")]
    [TestCase("?before=1.5", "Field 'before' must be an integer >= 0 (a seq; older messages are returned).")]
    [TestCase("?q=%20%20", "Field 'q' must be 1 to 200 characters, not only white space (it has 2).")]
    [TestCase("?q=a%01b", "Field 'q' must not contain control characters.")]
    [CancelAfter(15_000)]
    public async Task A_bad_query_gets_400_with_the_protocols_sentence(string query, string detail, CancellationToken cancellationToken)
    {
        using var response = await Api(HostA).GetAsync(Path(TestNames.Room()) + query, cancellationToken);
        Assert.That(await ProblemAsync(response, HttpStatusCode.BadRequest, cancellationToken), Is.EqualTo(detail));
    }

    [TestCase("0")]
    [TestCase("-3")]
    [TestCase("three")]
    [CancelAfter(15_000)]
    public async Task A_bad_seq_in_a_delete_path_gets_400(string seq, CancellationToken cancellationToken)
    {
        using var response = await Api(HostA).DeleteAsync($"{Path(TestNames.Room())}/epoch/{seq}", cancellationToken);
        Assert.That(await ProblemAsync(response, HttpStatusCode.BadRequest, cancellationToken), Is.EqualTo("Field 'seq' is required and must be an integer >= 1."));
    }

    [Test, CancelAfter(20_000)]
    public async Task Without_the_history_database_pages_come_from_the_log_and_a_search_is_501(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api no db");
        using var http = Api(HostA);
        for (var i = 1; i <= 3; i++)
        {
            await PostAsync(http, room, "bot", $"log {i}", cancellationToken);
        }

        await using var reader = await ChatClient.SignInAsync(HostB.WebSocketUri, "reader", room, cancellationToken);
        var page = await PageAsync(http, room, "?limit=2", cancellationToken);
        var frame = await reader.RequestAsync(new { type = "history", limit = 2 }, cancellationToken);
        Assert.That(page.Messages.Select(m => m.Raw), Is.EqualTo(frame.Messages.Select(m => m.Raw)));
        Assert.That(page.Messages.Select(m => m.Text), Is.EqualTo(new[] { "log 2", "log 3" }));

        using var search = await http.GetAsync(Path(room) + "?q=log", cancellationToken);
        var searchFrame = await reader.RequestAsync(new { type = "search", q = "log" }, cancellationToken);
        Assert.That(await ProblemAsync(search, HttpStatusCode.NotImplemented, cancellationToken),
            Is.EqualTo(searchFrame.Error).And.EqualTo("Search needs the history database (History__ConnectionString)."));

        // Delete and erase work on the log alone.
        using var deleted = await http.DeleteAsync($"{Path(room)}/{page.Epoch}/1", cancellationToken);
        Assert.That(deleted.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        using var erased = await http.DeleteAsync("/api/users/bot/messages", cancellationToken);
        Assert.That(await erased.Content.ReadAsStringAsync(cancellationToken), Does.Match("""^\{"deleted":[1-9][0-9]*\}$"""));
        Assert.That((await PageAsync(http, room, "", cancellationToken)).Messages.Select(m => m.Text), Has.All.Null);
    }
}
