using System.Globalization;
using System.Net.WebSockets;
using System.Text;

namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// Every row of PROTOCOL.md's validation table, on both backends: the frame gets exactly one ack with <c>ok:false</c>
/// naming the field or limit, nothing is published or stored, and the connection stays usable.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class ValidationTableTests(Backend backend) : TwoHostFixture(backend)
{
    private static readonly string s_longName = new('n', 33);
    private static readonly string s_longRoom = new('r', 65);
    private static readonly string s_longText = new('t', 2001);
    private static readonly string s_emojiUser = string.Concat(Enumerable.Repeat("🎉", 32));   // 32 code points, 64 UTF-16 units

    /// <summary>Frames sent before signing in, with the words the error must contain.</summary>
    public static IEnumerable<TestCaseData> RejectedBeforeSignIn()
    {
        yield return Case("""not json""", "not valid JSON", "broken JSON");
        yield return Case("""{"type":"signin","user":"a","room":"r" """, "not valid JSON", "truncated JSON");
        yield return Case("""[1,2]""", "JSON object", "array");
        yield return Case("""42""", "JSON object", "number");
        yield return Case("""{"id":1}""", "'type'", "missing type");
        yield return Case("""{"type":7,"id":1}""", "'type'", "type not a string");
        yield return Case("""{"type":"dance","id":1}""", "Unknown frame type 'dance'", "unknown type");
        yield return Case("""{"type":"signin","id":{"a":1},"user":"a","room":"r"}""", "'id'", "id an object");
        yield return Case("""{"type":"signin","id":true,"user":"a","room":"r"}""", "'id'", "id a boolean");
        yield return Case("""{"type":"signin","id":[1],"user":"a","room":"r"}""", "'id'", "id an array");
        yield return Case("""{"type":"signin","id":1,"room":"r"}""", "'user'", "user missing");
        yield return Case("""{"type":"signin","id":1,"user":null,"room":"r"}""", "'user'", "user null");
        yield return Case("""{"type":"signin","id":1,"user":5,"room":"r"}""", "'user'", "user a number");
        yield return Case("""{"type":"signin","id":1,"user":"   ","room":"r"}""", "'user'", "user blank");
        yield return Case($$"""{"type":"signin","id":1,"user":"{{s_longName}}","room":"r"}""", "'user' must be 1 to 32", "user 33 characters");
        yield return Case("""{"type":"signin","id":1,"user":"a\u0007b","room":"r"}""", "'user' must not contain control", "user with BEL");
        yield return Case("""{"type":"signin","id":1,"user":"a\nb","room":"r"}""", "'user' must not contain control", "user with LF");
        yield return Case("""{"type":"signin","id":1,"user":"\ud800","room":"r"}""", "'user' must be valid Unicode", "user lone surrogate");
        yield return Case("""{"type":"signin","id":1,"user":"a"}""", "'room'", "room missing");
        yield return Case("""{"type":"signin","id":1,"user":"a","room":["r"]}""", "'room'", "room an array");
        yield return Case("""{"type":"signin","id":1,"user":"a","room":""}""", "'room'", "room empty");
        yield return Case($$"""{"type":"signin","id":1,"user":"a","room":"{{s_longRoom}}"}""", "'room' must be 1 to 64", "room 65 characters");
        yield return Case("""{"type":"signin","id":1,"user":"a","room":"r\u0000"}""", "'room' must not contain control", "room with NUL");
        yield return Case("""{"type":"updateSocketId","id":1,"user":"a","room":"r","since":-1}""", "'since'", "since negative");
        yield return Case("""{"type":"updateSocketId","id":1,"user":"a","room":"r","since":1.5}""", "'since'", "since fractional");
        yield return Case("""{"type":"updateSocketId","id":1,"user":"a","room":"r","since":"3"}""", "'since'", "since a string");
        yield return Case("""{"type":"updateSocketId","id":1,"user":"a","room":"r","since":1e400}""", "'since'", "since huge");
        yield return Case("""{"type":"updateSocketId","id":1,"user":"a","room":"r","since":1,"epoch":5}""", "'epoch'", "epoch a number");
        yield return Case("""{"type":"updateSocketId","id":1,"room":"r"}""", "'user'", "update without user");
        yield return Case("""{"type":"sendMessage","id":1,"text":"hi"}""", "User session not found.", "not signed in");
    }

    /// <summary>Frames sent after signing in.</summary>
    public static IEnumerable<TestCaseData> RejectedAfterSignIn()
    {
        yield return Case("""{"type":"sendMessage","id":1}""", "'text'", "text missing");
        yield return Case("""{"type":"sendMessage","id":1,"text":5}""", "'text' must be a string", "text a number");
        yield return Case("""{"type":"sendMessage","id":1,"text":""}""", "'text' must be 1 to 2000", "text empty");
        yield return Case("""{"type":"sendMessage","id":1,"text":" \t\r\n "}""", "only white space", "text only white space");
        yield return Case($$"""{"type":"sendMessage","id":1,"text":"{{s_longText}}"}""", "'text' must be 1 to 2000", "text 2001 characters");
        yield return Case("""{"type":"sendMessage","id":1,"text":"a\u001bb"}""", "'text' must not contain control", "text with ESC");
        yield return Case("""{"type":"sendMessage","id":1,"text":"a\u007fb"}""", "'text' must not contain control", "text with DEL");
        yield return Case("""{"type":"sendMessage","id":1,"text":"\udc00"}""", "'text' must be valid Unicode", "text lone surrogate");
        yield return Case("""{"type":"signin","id":1,"user":"","room":"elsewhere"}""", "'user'", "bad signin while signed in");
        yield return Case("""{"type":"updateSocketId","id":1,"user":"a","room":"r","since":-5}""", "'since'", "bad update while signed in");
    }

    [TestCaseSource(nameof(RejectedBeforeSignIn)), CancelAfter(15_000)]
    public async Task Rejected_before_signin(string frame, string expectedError, CancellationToken cancellationToken)
    {
        foreach (var host in new[] { HostA, HostB })   // the same rules on every instance
        {
            await using var client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
            await client.SendRawAsync(frame, cancellationToken);

            var ack = await client.NextAsync(cancellationToken);
            AssertRejected(ack, expectedError);

            // Still usable, and the rejected frame did not sign it in: sendMessage is still "not signed in".
            var probe = await client.RequestAsync(new { type = "sendMessage", text = "x" }, cancellationToken);
            Assert.That(probe.Error, Is.EqualTo("User session not found."));
            var signin = await client.RequestAsync(new { type = "signin", user = "a", room = TestNames.Room() }, cancellationToken);
            Assert.That(signin.Ok, Is.True, signin.Raw);
        }
    }

    [TestCaseSource(nameof(RejectedAfterSignIn)), CancelAfter(15_000)]
    public async Task Rejected_after_signin_changes_nothing(string frame, string expectedError, CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var listener = await ChatClient.SignInAsync(HostB.WebSocketUri, "listener", room, cancellationToken);
        await using var client = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await listener.ExpectAsync(f => f.Type == "notification", cancellationToken);

        await client.SendRawAsync(frame, cancellationToken);
        AssertRejected(await client.NextAsync(cancellationToken), expectedError);

        // Nothing was published, the connection is still in its room and usable: the next thing anyone sees is the
        // sentinel, numbered 1 (the rejected frame took no seq), sent by alice in the same room.
        var ok = await client.RequestAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken);
        Assert.That((ok.Ok, ok.Seq), Is.EqualTo((true, 1L)), ok.Raw);
        var seen = await listener.NextAsync(cancellationToken);
        Assert.That((seen.Type, seen.User, seen.Room, seen.Text), Is.EqualTo(("message", "alice", room, "sentinel")), seen.Raw);
    }

    [Test, CancelAfter(15_000)]
    public async Task A_binary_frame_is_rejected_and_the_connection_stays_open(CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        await client.SendBytesAsync(Encoding.UTF8.GetBytes("""{"type":"signin","id":1,"user":"a","room":"r"}"""),
            WebSocketMessageType.Binary, cancellationToken);

        var ack = await client.NextAsync(cancellationToken);
        AssertRejected(ack, "Binary frames are not accepted");
        Assert.That(ack.IdJson, Is.EqualTo("null"));
        Assert.That((await client.RequestAsync(new { type = "signin", user = "a", room = TestNames.Room() }, cancellationToken)).Ok, Is.True);
    }

    [Test, CancelAfter(15_000)]
    public async Task Invalid_utf8_in_a_text_frame_closes_with_1007_as_RFC_6455_requires(CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        byte[] frame = [.. Encoding.UTF8.GetBytes("{\"type\":\"signin\",\"id\":1,\"user\":\"a"), 0xC3, 0x28,
            .. Encoding.UTF8.GetBytes("\",\"room\":\"r\"}")];
        await client.SendBytesAsync(frame, WebSocketMessageType.Text, cancellationToken);

        // .NET's client does not validate the UTF-8 it sends, so the server really sees the bad bytes. RFC 6455 §8.1
        // says to fail such a connection with 1007; the server's WebSocket does exactly that (PROTOCOL.md, our doc).
        // The server's socket then goes away at once; when that reset overtakes the Close frame on the client side,
        // the client sees no status at all. Either way no ack arrives, and the server goes on serving.
        Assert.That(await client.WaitForCloseAsync(cancellationToken), Is.EqualTo(WebSocketCloseStatus.InvalidPayloadData).Or.Null);
        await using var next = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        Assert.That((await next.RequestAsync(new { type = "signin", user = "a", room = TestNames.Room() }, cancellationToken)).Ok, Is.True);
    }

    [TestCase(1)]
    [TestCase(2.50)]
    [TestCase("abc")]
    [TestCase("")]
    [CancelAfter(15_000)]
    public async Task The_id_is_echoed_unchanged_on_success_and_failure(object id, CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var idJson = System.Text.Json.JsonSerializer.Serialize(id);

        await client.SendRawAsync($$"""{"type":"sendMessage","id":{{idJson}},"text":"x"}""", cancellationToken);
        Assert.That((await client.NextAsync(cancellationToken)).IdJson, Is.EqualTo(idJson));
        await client.SendRawAsync($$"""{"type":"signin","id":{{idJson}},"user":"a","room":"{{TestNames.Room()}}"}""", cancellationToken);
        var ok = await client.NextAsync(cancellationToken);
        Assert.That((ok.Ok, ok.IdJson), Is.EqualTo((true, idJson)));
    }

    [TestCase("""{"type":"signin","user":"a","room":"r"}""")]
    [TestCase("""{"type":"signin","id":null,"user":"a","room":"r"}""")]
    [CancelAfter(15_000)]
    public async Task A_frame_without_id_or_with_null_id_gets_an_ack_with_id_null(string frame, CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        await client.SendRawAsync(frame.Replace("\"r\"", $"\"{TestNames.Room()}\"", StringComparison.Ordinal), cancellationToken);

        var ack = await client.NextAsync(cancellationToken);
        Assert.That((ack.Type, ack.Ok, ack.IdJson), Is.EqualTo(("ack", true, "null")), ack.Raw);
    }

    [Test, CancelAfter(15_000)]
    public async Task Names_at_the_limit_in_code_points_are_accepted(CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var ack = await client.RequestAsync(new { type = "signin", user = s_emojiUser, room = new string('r', 31) + Guid.NewGuid().ToString("N") + "x" }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        var text = await client.RequestAsync(new { type = "sendMessage", text = new string('t', 2000) }, cancellationToken);
        Assert.That(text.Ok, Is.True, text.Raw);
    }

    [TestCase("A"), TestCase("B"), CancelAfter(15_000)]
    public async Task A_frame_over_16_KiB_closes_the_connection_with_1009(string instance, CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(Host(instance).WebSocketUri, cancellationToken);
        var big = $$"""{"type":"sendMessage","id":1,"text":"{{new string('x', 16 * 1024)}}"}""";

        await client.SendRawAsync(big, cancellationToken);

        Assert.That(await client.WaitForCloseAsync(cancellationToken), Is.EqualTo(WebSocketCloseStatus.MessageTooBig));
    }

    [Test, CancelAfter(15_000)]
    public async Task A_frame_of_exactly_16_KiB_is_accepted(CancellationToken cancellationToken)
    {
        await using var client = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        const string prefix = "{\"type\":\"dance\",\"id\":1,\"pad\":\"";
        var frame = prefix + new string('x', (16 * 1024) - prefix.Length - 2) + "\"}";
        Assert.That(Encoding.UTF8.GetByteCount(frame), Is.EqualTo(16 * 1024));

        await client.SendRawAsync(frame, cancellationToken);

        AssertRejected(await client.NextAsync(cancellationToken), "Unknown frame type");
    }

    [TestCase("A"), TestCase("B"), CancelAfter(20_000)]
    public async Task Frames_beyond_the_rate_limit_are_refused_each_with_one_ack(string instance, CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var client = await ChatClient.SignInAsync(Host(instance).WebSocketUri, "fast", room, cancellationToken);
        const int Sent = 80;   // burst is 40; far fewer than 40 more tokens refill while these go out

        for (var i = 0; i < Sent; i++)
        {
            await client.SendRawAsync($$"""{"type":"dance","id":{{i}}}""", cancellationToken);
        }

        var acks = new List<Frame>();
        while (acks.Count < Sent)
        {
            acks.Add(await client.ExpectAsync(f => f.Type == "ack", cancellationToken));
        }

        var limited = acks.Where(a => a.Error?.Contains("Rate limit", StringComparison.Ordinal) == true).ToList();
        Assert.That(limited, Is.Not.Empty);
        Assert.That(limited[0].Error, Does.Contain("20 frames a second").And.Contain("40"));
        Assert.That(acks.Count(a => a.Error?.Contains("Unknown frame type", StringComparison.Ordinal) == true), Is.GreaterThanOrEqualTo(39), "the burst (40, one spent on signin) passes");
        Assert.That(acks, Has.All.Matches<Frame>(a => !a.Ok));
        Assert.That(acks.Select(a => a.IdJson), Is.EqualTo(Enumerable.Range(0, Sent).Select(i => i.ToString(CultureInfo.InvariantCulture))),
            "every ack, the rate limit's too, echoes its frame's id, in order");
    }

    [Test, CancelAfter(20_000)]
    public async Task A_rate_limited_frame_echoes_its_id_and_one_that_does_not_parse_gets_id_null(CancellationToken cancellationToken)
    {
        var settings = new Dictionary<string, string?> { ["Chat:RateLimitPerSecond"] = "1", ["Chat:RateLimitBurst"] = "1" };
        await using var host = new ChatHost(TestRedis.ConnectionString, settings);
        await using var client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);

        await client.SendRawAsync("""{"type":"dance","id":"first"}""", cancellationToken);
        await client.SendRawAsync("""{"type":"dance","id":"second"}""", cancellationToken);
        await client.SendRawAsync("{not json", cancellationToken);

        var first = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
        var second = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
        var third = await client.ExpectAsync(f => f.Type == "ack", cancellationToken);
        Assert.That(first.IdJson, Is.EqualTo("\"first\""));
        Assert.That(first.Error, Does.Contain("Unknown frame type"));
        Assert.That(second.IdJson, Is.EqualTo("\"second\""));
        Assert.That(second.Error, Does.Contain("Rate limit"));
        Assert.That(third.IdJson, Is.EqualTo("null"));
        Assert.That(third.Error, Does.Contain("Rate limit"));
    }

    private ChatHost Host(string instance) => instance == "A" ? HostA : HostB;

    private static TestCaseData Case(string frame, string error, string name) =>
        new TestCaseData(frame, error).SetArgDisplayNames(name);

    private static void AssertRejected(Frame ack, string expectedError)
    {
        Assert.That(ack.Type, Is.EqualTo("ack"), ack.Raw);
        Assert.That(ack.Ok, Is.False, ack.Raw);
        Assert.That(ack.Error, Does.Contain(expectedError), ack.Raw);
        Assert.That(ack.Root.TryGetProperty("id", out _), Is.True, "the ack always has the field id");
    }
}
