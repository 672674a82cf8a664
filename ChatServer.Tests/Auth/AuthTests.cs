using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using Microsoft.IdentityModel.Tokens;

namespace ChatServer.Tests.Auth;

/// <summary>
/// Every rule of PROTOCOL.md's "Authentication (optional, protocol 1.1)" on two instances sharing the test Redis,
/// against a real OIDC issuer started by the test.
/// </summary>
public sealed class AuthTests : AuthFixture
{
    [TestCase(SecurityAlgorithms.RsaSha256)]
    [TestCase(SecurityAlgorithms.EcdsaSha256)]
    [CancelAfter(30_000)]
    public async Task A_valid_auth_frame_signs_the_connection_in_as_the_tokens_name(string alg, CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var token = Issuer.Mint("Alice Doe", TimeSpan.FromMinutes(10), alg);
        await using var alice = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var ack = await alice.RequestAsync(new { type = "auth", token }, cancellationToken);

        Assert.That((ack.Ok, ack.User), Is.EqualTo((true, "Alice Doe")), ack.Raw);
        var expiresAt = DateTime.ParseExact(ack.Root.GetProperty("expiresAt").GetString()!, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'",
            CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
        Assert.That(expiresAt, Is.EqualTo(DateTime.UtcNow.AddMinutes(10)).Within(TimeSpan.FromMinutes(1)));

        await using var bob = await SignInAsync(HostB.WebSocketUri, Issuer.Mint("Bob Roe"), room, cancellationToken);
        Assert.That((await alice.RequestAsync(new { type = "signin", room }, cancellationToken)).Ok, Is.True);
        var joined = await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);
        Assert.That(joined.User, Is.EqualTo("Alice Doe"));

        Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = "hello" }, cancellationToken)).Ok, Is.True);
        var message = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That((message.User, message.Text), Is.EqualTo(("Alice Doe", "hello")));
    }

    [TestCase("Authorization", SecurityAlgorithms.RsaSha256)]
    [TestCase("Authorization", SecurityAlgorithms.EcdsaSha256)]
    [TestCase(IapHeader, SecurityAlgorithms.EcdsaSha256)]
    [TestCase(IapHeader, SecurityAlgorithms.RsaSha256)]
    [CancelAfter(30_000)]
    public async Task A_valid_token_on_the_upgrade_signs_the_connection_in(string header, string alg, CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var token = Issuer.Mint("Carol Poe", alg: alg);
        var value = header == "Authorization" ? $"Bearer {token}" : token;
        await using var carol = await ChatClient.ConnectWithHeadersAsync(HostA.WebSocketUri,
            new Dictionary<string, string> { [header] = value }, cancellationToken);

        var ack = await carol.RequestAsync(new { type = "signin", room }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        await carol.RequestAsync(new { type = "sendMessage", text = "via the upgrade" }, cancellationToken);
        var message = await carol.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That(message.User, Is.EqualTo("Carol Poe"));
    }

    public static IEnumerable<TestCaseData> BadTokens()
    {
        yield return new TestCaseData("expired", "expired");
        yield return new TestCaseData("audience", "audience");
        yield return new TestCaseData("issuer", "issuer");
        yield return new TestCaseData("bad signature", "signature");
        yield return new TestCaseData("unknown key", "signature");
        yield return new TestCaseData("alg none", "signature");
        yield return new TestCaseData("HMAC with the public key", "signature");
        yield return new TestCaseData("not a JWT", "malformed");
    }

    private string BadToken(string kind) => kind switch
    {
        "expired" => Issuer.Mint(lifetime: TimeSpan.FromMinutes(-5)),
        "audience" => Issuer.Mint(audience: "someone-elses-project"),
        "issuer" => Issuer.Mint(issuer: "https://securetoken.google.com/someone-elses-project"),
        "bad signature" => Issuer.MintWithBadSignature(),
        "unknown key" => Issuer.Mint(signWith: TestIssuer.UnpublishedKey()),
        "alg none" => Issuer.MintUnsigned(),
        "HMAC with the public key" => Issuer.MintHmacWithPublicKey(),
        _ => "not-a-jwt",
    };

    [TestCaseSource(nameof(BadTokens)), CancelAfter(30_000)]
    public async Task A_bad_token_in_an_auth_frame_is_refused_saying_why_and_the_connection_stays_open(string kind, string word,
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var observer = await SignInAsync(HostB.WebSocketUri, Issuer.Mint("Observer"), room, cancellationToken);
        await using var mallory = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);

        var ack = await mallory.RequestAsync(new { type = "auth", token = BadToken(kind) }, cancellationToken);
        Assert.That(ack.Ok, Is.False, ack.Raw);
        Assert.That(ack.Error, Does.Contain(word));

        // Still open, still not signed in: nothing it sends gets through.
        var signIn = await mallory.RequestAsync(new { type = "signin", room, user = "Alice Doe" }, cancellationToken);
        Assert.That(signIn.Ok, Is.False, signIn.Raw);
        Assert.That(signIn.Error, Does.Contain("Authentication"));
        Assert.That((await observer.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"));
    }

    [TestCaseSource(nameof(BadTokens)), CancelAfter(30_000)]
    public async Task A_bad_token_on_the_upgrade_gets_401_and_no_socket(string kind, string word, CancellationToken cancellationToken)
    {
        _ = word;
        var token = BadToken(kind);
        Assert.That(await UpgradeStatusAsync(HostA.WebSocketUri, "Authorization", $"Bearer {token}", cancellationToken),
            Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(await UpgradeStatusAsync(HostB.WebSocketUri, IapHeader, token, cancellationToken),
            Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test, CancelAfter(30_000)]
    public async Task An_upgrade_without_a_token_is_accepted_and_needs_an_auth_frame(CancellationToken cancellationToken)
    {
        Assert.That(await UpgradeStatusAsync(HostA.WebSocketUri, "X-Unrelated", "1", cancellationToken), Is.EqualTo(HttpStatusCode.SwitchingProtocols));
        await using var client = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        Assert.That((await client.RequestAsync(new { type = "auth", token = Issuer.Mint() }, cancellationToken)).Ok, Is.True);
    }

    [Test, CancelAfter(30_000)]
    public async Task The_fifth_failed_auth_frame_closes_the_connection_with_1008(CancellationToken cancellationToken)
    {
        await using var mallory = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        for (var i = 1; i <= 4; i++)
        {
            var ack = await mallory.RequestAsync(new { type = "auth", token = Issuer.Mint(audience: "wrong") }, cancellationToken);
            Assert.That(ack.Ok, Is.False);
        }

        Assert.That(mallory.State, Is.EqualTo(WebSocketState.Open));
        await mallory.SendAsync(new { type = "auth", id = 5, token = "still-not-a-jwt" }, cancellationToken);
        Assert.That(await mallory.WaitForCloseAsync(cancellationToken), Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
    }

    [Test, CancelAfter(30_000)]
    public async Task Frames_before_a_valid_token_are_refused_and_nothing_is_published(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var observer = await SignInAsync(HostB.WebSocketUri, Issuer.Mint("Observer"), room, cancellationToken);
        await using var anonymous = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);

        object[] frames =
        [
            new { type = "signin", user = "alice", room },
            new { type = "updateSocketId", user = "alice", room, since = 0 },
            new { type = "sendMessage", text = "spoofed" },
            new { type = "members" },
            new { type = "history" },
        ];
        foreach (var frame in frames)
        {
            var ack = await anonymous.RequestAsync(frame, cancellationToken);
            Assert.That(ack.Ok, Is.False, ack.Raw);
            Assert.That(ack.Error, Does.Contain("Authentication"), ack.Raw);
        }

        Assert.That((await observer.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"));
        var members = await observer.RequestAsync(new { type = "members" }, cancellationToken);
        Assert.That(members.Root.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "Observer" }));
        var history = await observer.RequestAsync(new { type = "history" }, cancellationToken);
        Assert.That(history.Messages.Select(m => m.Text), Is.EqualTo(new[] { "sentinel" }));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_user_other_than_the_identitys_is_refused_and_its_own_name_is_accepted(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice = await AuthenticateAsync(HostA.WebSocketUri, Issuer.Mint("Alice Doe"), cancellationToken);

        foreach (var frame in new object[] { new { type = "signin", user = "Bob Roe", room }, new { type = "updateSocketId", user = "Bob Roe", room } })
        {
            var refused = await alice.RequestAsync(frame, cancellationToken);
            Assert.That(refused.Ok, Is.False, refused.Raw);
            Assert.That(refused.Error, Does.Contain("'user'"));
        }

        Assert.That((await alice.RequestAsync(new { type = "signin", user = " Alice Doe ", room }, cancellationToken)).Ok, Is.True);
        Assert.That((await alice.RequestAsync(new { type = "updateSocketId", user = "Alice Doe", room }, cancellationToken)).Ok, Is.True);

        // A fresh token must be for the same user.
        var other = await alice.RequestAsync(new { type = "auth", token = Issuer.Mint("Bob Roe") }, cancellationToken);
        Assert.That(other.Ok, Is.False, other.Raw);
        Assert.That(other.Error, Does.Contain("another user"));
        var message = await alice.RequestAsync(new { type = "sendMessage", text = "still me" }, cancellationToken);
        Assert.That(message.Ok, Is.True);
        Assert.That((await alice.ExpectAsync(f => f.Type == "message", cancellationToken)).User, Is.EqualTo("Alice Doe"));
    }

    [Test, CancelAfter(30_000)]
    public async Task The_rooms_claim_allows_exact_names_and_prefix_patterns_and_nothing_else(CancellationToken cancellationToken)
    {
        var team = $"team-{Guid.NewGuid():N}";
        var exact = TestNames.Room("lobby");
        var elsewhere = TestNames.Room("other");
        await using var observer = await SignInAsync(HostB.WebSocketUri, Issuer.Mint("Observer"), elsewhere, cancellationToken);
        var token = Issuer.Mint("Dana", claims: new Dictionary<string, object> { ["rooms"] = new[] { "team-*", exact } });
        await using var dana = await AuthenticateAsync(HostA.WebSocketUri, token, cancellationToken);

        Assert.That((await dana.RequestAsync(new { type = "signin", room = team }, cancellationToken)).Ok, Is.True);
        Assert.That((await dana.RequestAsync(new { type = "signin", room = exact }, cancellationToken)).Ok, Is.True);
        foreach (var refusedRoom in new[] { elsewhere, exact + "x", "TEAM-x", "team" })
        {
            var ack = await dana.RequestAsync(new { type = "updateSocketId", room = refusedRoom }, cancellationToken);
            Assert.That(ack.Ok, Is.False, ack.Raw);
            Assert.That(ack.Error, Does.Contain("not allowed"));
            var signIn = await dana.RequestAsync(new { type = "signin", room = refusedRoom }, cancellationToken);
            Assert.That(signIn.Error, Does.Contain("not allowed"));
        }

        Assert.That((await observer.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"), "nothing announced");

        var anyRoom = Issuer.Mint("Eve", claims: new Dictionary<string, object> { ["rooms"] = "*" });
        await using var eve = await SignInAsync(HostA.WebSocketUri, anyRoom, elsewhere, cancellationToken);
        await using var noClaim = await AuthenticateAsync(HostA.WebSocketUri, Issuer.Mint("Finn", anyRoom: false), cancellationToken);
        var refused = await noClaim.RequestAsync(new { type = "signin", room = elsewhere }, cancellationToken);
        Assert.That(refused.Error, Does.Contain("not allowed"), "RoomsClaim set, a token without it: no room");
    }

    [Test, CancelAfter(60_000)]
    public async Task A_fresh_auth_before_expiry_keeps_the_connection_open_past_the_first_tokens_exp(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var observer = await SignInAsync(HostB.WebSocketUri, Issuer.Mint("Observer"), room, cancellationToken);
        var firstLifetime = TimeSpan.FromSeconds(4);
        var firstExpiry = DateTimeOffset.UtcNow + firstLifetime;
        await using var alice = await SignInAsync(HostA.WebSocketUri, Issuer.Mint("Alice Doe", firstLifetime), room, cancellationToken);
        await observer.ExpectAsync(f => f.Type == "notification", cancellationToken);

        var refreshed = await alice.RequestAsync(new { type = "auth", token = Issuer.Mint("Alice Doe", TimeSpan.FromMinutes(5)) }, cancellationToken);
        Assert.That(refreshed.Ok, Is.True, refreshed.Raw);
        await WaitUntilAsync(firstExpiry + TimeSpan.FromSeconds(2), cancellationToken);

        Assert.That(alice.State, Is.EqualTo(WebSocketState.Open));
        Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = "still here" }, cancellationToken)).Ok, Is.True);
        var next = await observer.NextAsync(cancellationToken);
        Assert.That((next.Type, next.Text), Is.EqualTo(("message", "still here")), "no leave notification before it");
    }

    [Test, CancelAfter(60_000)]
    public async Task Without_a_fresh_token_the_connection_is_closed_with_4001_and_the_others_see_it_leave(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var observer = await SignInAsync(HostB.WebSocketUri, Issuer.Mint("Observer"), room, cancellationToken);
        await using var alice = await SignInAsync(HostA.WebSocketUri, Issuer.Mint("Alice Doe", TimeSpan.FromSeconds(3)), room, cancellationToken);
        Assert.That((await observer.ExpectAsync(f => f.Type == "notification", cancellationToken)).Description, Does.Contain("entered"));

        Assert.That(await alice.WaitForCloseAsync(cancellationToken), Is.EqualTo((WebSocketCloseStatus)4001));
        var left = await observer.ExpectAsync(f => f.Type == "notification", cancellationToken);
        Assert.That((left.User, left.Description), Is.EqualTo(("Alice Doe", "Alice Doe just left the room")));

        // The client gets a new token, reconnects (to the other instance here) and resumes without an announcement.
        Assert.That((await observer.RequestAsync(new { type = "sendMessage", text = "while away" }, cancellationToken)).Ok, Is.True);
        await using var again = await AuthenticateAsync(HostB.WebSocketUri, Issuer.Mint("Alice Doe"), cancellationToken);
        var resumed = await again.RequestAsync(new { type = "updateSocketId", room, since = 0 }, cancellationToken);
        Assert.That(resumed.Messages.Select(m => (m.User, m.Text)), Is.EqualTo(new[] { ("Observer", "while away") }));
    }

    [Test, CancelAfter(60_000)]
    public async Task Keys_rotated_at_the_issuer_are_picked_up_on_the_first_token_that_names_one(CancellationToken cancellationToken)
    {
        foreach (var host in new[] { HostA, HostB })   // both instances have the current keys cached
        {
            await using var warm = await AuthenticateAsync(host.WebSocketUri, Issuer.Mint(), cancellationToken);
        }

        var oldToken = Issuer.Mint("Old Key", alg: SecurityAlgorithms.EcdsaSha256);
        // The library refetches at most once per Auth:KeyRefreshInterval (1 s here) since its last fetch.
        await WaitUntilAsync(Issuer.JwksServedAt + TimeSpan.FromSeconds(1.5), cancellationToken);
        Issuer.RotateKeys();
        var fetchesBefore = Issuer.JwksRequests;

        foreach (var (host, alg) in new[] { (HostA, SecurityAlgorithms.RsaSha256), (HostB, SecurityAlgorithms.EcdsaSha256) })
        {
            await using var client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
            var ack = await client.RequestAsync(new { type = "auth", token = Issuer.Mint("New Key", alg: alg) }, cancellationToken);
            Assert.That((ack.Ok, ack.User), Is.EqualTo((true, "New Key")), ack.Raw);
        }

        Assert.That(Issuer.JwksRequests, Is.GreaterThanOrEqualTo(fetchesBefore + 2), "each instance fetched the new JWKS");
        await using var stale = await ChatClient.ConnectAsync(HostA.WebSocketUri, cancellationToken);
        var refused = await stale.RequestAsync(new { type = "auth", token = oldToken }, cancellationToken);
        Assert.That(refused.Error, Does.Contain("signature"), "a key the issuer no longer lists is refused");
    }

    [Test, CancelAfter(60_000)]
    public async Task No_token_ever_appears_in_the_logs_of_either_instance(CancellationToken cancellationToken)
    {
        // Every way a token reaches the server, valid and not, on both hosts; then read everything they logged.
        var room = TestNames.Room();
        foreach (var host in new[] { HostA, HostB })
        {
            var bearer = Issuer.Mint("Logged Maybe");
            await using (var viaHeader = await ChatClient.ConnectWithHeadersAsync(host.WebSocketUri,
                new Dictionary<string, string> { ["Authorization"] = $"Bearer {bearer}", [IapHeader] = Issuer.Mint("Logged Maybe") }, cancellationToken))
            {
                Assert.That((await viaHeader.RequestAsync(new { type = "signin", room }, cancellationToken)).Ok, Is.True);
            }

            await UpgradeStatusAsync(host.WebSocketUri, "Authorization", $"Bearer {Issuer.Mint(audience: "x")}", cancellationToken);
            await using var viaFrame = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
            await viaFrame.RequestAsync(new { type = "auth", token = Issuer.Mint("Logged Maybe") }, cancellationToken);
            await viaFrame.RequestAsync(new { type = "auth", token = Issuer.MintWithBadSignature() }, cancellationToken);
            await viaFrame.RequestAsync(new { type = "auth", token = Issuer.Mint("Someone Else") }, cancellationToken);
            using var http = host.CreateHttpClient();
            using var request = new HttpRequestMessage(HttpMethod.Get, "/auth/config");
            request.Headers.Authorization = new("Bearer", Issuer.Mint("Logged Maybe"));
            using var response = await http.SendAsync(request, cancellationToken);
        }

        var lines = HostA.Logs.Entries.Concat(HostB.Logs.Entries).Select(e => e.Message).ToList();
        Assert.That(lines, Has.Some.Contains("/ws"), "the request log is on: there was something to leak into");
        foreach (var token in Issuer.Minted)
        {
            var parts = token.Split('.');
            foreach (var line in lines)
            {
                Assert.That(line, Does.Not.Contain(parts[1]), "a token's payload in a log line");
                if (parts[2].Length > 0)
                {
                    Assert.That(line, Does.Not.Contain(parts[2]), "a token's signature in a log line");
                }
            }
        }
    }

    [Test, CancelAfter(30_000)]
    public async Task Auth_config_tells_the_page_that_tokens_are_required_and_who_a_header_token_proves(CancellationToken cancellationToken)
    {
        using var http = HostA.CreateHttpClient();
        Assert.That(await http.GetStringAsync("/auth/config", cancellationToken), Is.EqualTo("""{"required":true}"""));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/auth/config");
        request.Headers.Add(IapHeader, Issuer.Mint("Iap User"));
        using var response = await http.SendAsync(request, cancellationToken);
        Assert.That(await response.Content.ReadAsStringAsync(cancellationToken), Is.EqualTo("""{"required":true,"user":"Iap User"}"""));
    }

    /// <summary>The HTTP status of a WebSocket upgrade carrying <paramref name="header"/>.</summary>
    private static async Task<HttpStatusCode> UpgradeStatusAsync(Uri uri, string header, string value, CancellationToken cancellationToken)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader(header, value);
        try
        {
            await socket.ConnectAsync(uri, cancellationToken);
            socket.Abort();
        }
        catch (WebSocketException)
        {
        }

        return socket.HttpStatusCode;
    }

    /// <summary>Waits until the clock passes <paramref name="moment"/> (a token's expiry): waiting, never a speed assertion.</summary>
    private static async Task WaitUntilAsync(DateTimeOffset moment, CancellationToken cancellationToken)
    {
        var remaining = moment - DateTimeOffset.UtcNow;
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining, cancellationToken);
        }
    }
}
