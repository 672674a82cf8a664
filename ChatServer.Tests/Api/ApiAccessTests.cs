using System.Net;
using System.Net.Http.Headers;

namespace ChatServer.Tests.Api;

/// <summary>
/// Who may call the server API (docs/API.md, "Access"): either key, or an ID token for the audience from an allowed
/// caller; everything else 401 with <c>WWW-Authenticate: Bearer</c> and a problem+json, checked before the body is
/// read; and no key or token in any log line at any level.
/// </summary>
public sealed class ApiAccessTests : ApiFixture
{
    protected override bool WithDatabase => false;

    [Test, CancelAfter(20_000)]
    public async Task Either_key_is_accepted_on_either_instance(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api keys");
        using var first = Api(HostA, Key);
        using var second = Api(HostB, SecondKey);
        await PostAsync(first, room, "bot", "with key 0", cancellationToken);
        await PostAsync(second, room, "bot", "with key 1", cancellationToken);
        Assert.That((await PageAsync(first, room, "", cancellationToken)).Messages.Select(m => m.Text), Is.EqualTo(new[] { "with key 0", "with key 1" }));
    }

    [Test, CancelAfter(20_000)]
    public async Task Missing_or_wrong_credentials_get_401_with_www_authenticate_and_nothing_is_stored(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api refused");
        var attempts = new (string What, Action<HttpRequestHeaders> Set, string Detail)[]
        {
            ("none", _ => { }, "Send Authorization: Bearer <API key or ID token>."),
            ("wrong key", h => h.Authorization = new("Bearer", "not-the-key-0123456789"), "The bearer credential is not an API key of this server."),
            ("key with a character more", h => h.Authorization = new("Bearer", Key + "x"), "The bearer credential is not an API key of this server."),
            ("key's prefix", h => h.Authorization = new("Bearer", Key[..^1]), "The bearer credential is not an API key of this server."),
            ("basic", h => h.Authorization = new("Basic", Key), "The Authorization header must be one 'Bearer <API key or ID token>'."),
            ("empty bearer", h => h.TryAddWithoutValidation("Authorization", "Bearer "), "The Authorization header must be one 'Bearer <API key or ID token>'."),
        };
        foreach (var (what, set, detail) in attempts)
        {
            foreach (var (method, path) in new[] { (HttpMethod.Post, Path(room)), (HttpMethod.Get, Path(room)), (HttpMethod.Delete, $"{Path(room)}/e/1"),
                         (HttpMethod.Delete, "/api/users/bot/messages") })
            {
                using var http = Client(HostA, bearer: null);
                using var request = new HttpRequestMessage(method, path);
                if (method == HttpMethod.Post)
                {
                    request.Content = Json(new { user = "bot", text = "sneaky" });
                }

                set(request.Headers);
                using var response = await http.SendAsync(request, cancellationToken);
                Assert.That(await ProblemAsync(response, HttpStatusCode.Unauthorized, cancellationToken), Is.EqualTo(detail), $"{what}: {method} {path}");
                Assert.That(response.Headers.WwwAuthenticate.Single().Scheme, Is.EqualTo("Bearer"), what);
            }
        }

        // A body far over the limit, without credentials: 401, not 413 (the body is not read before the check).
        using var anonymous = Client(HostA, bearer: null);
        using var large = await anonymous.PostAsync(Path(room), Json(new string(' ', 40_000) + "{}"), cancellationToken);
        Assert.That(large.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That((await PageAsync(Api(HostB), room, "", cancellationToken)).Messages, Is.Empty);
    }

    [Test, CancelAfter(20_000)]
    public async Task An_id_token_of_an_allowed_caller_is_accepted_and_others_are_refused_saying_why(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api tokens");
        using (var allowed = Api(HostA, IdToken()))
        {
            await PostAsync(allowed, room, "deploy-bot", "from another Cloud Run service", cancellationToken);
        }

        using (var differentCase = Api(HostB, IdToken(email: AllowedCaller.ToUpperInvariant())))
        {
            await PostAsync(differentCase, room, "deploy-bot", "email addresses compare without case", cancellationToken);
        }

        var refused = new (string What, string Token, string Detail)[]
        {
            ("a caller not listed", IdToken(email: "intruder@other-project.iam.gserviceaccount.com"),
                "The ID token's caller 'intruder@other-project.iam.gserviceaccount.com' is not in Api__AllowedCallers."),
            ("another audience", IdToken(audience: "https://other-service.example.test"), "The ID token's audience is not this service (Api__Audience)."),
            ("expired", IdToken(lifetime: TimeSpan.FromMinutes(-5)), "The ID token has expired; get a new one."),
            ("no email", Issuer.Mint("Deploy Bot", audience: Audience, anyRoom: false), "The ID token has no email claim; it must name the calling service account."),
            ("unverified email", Issuer.Mint(null, audience: Audience, anyRoom: false,
                claims: new Dictionary<string, object> { ["email"] = AllowedCaller, ["email_verified"] = false }), "The ID token's email is not verified."),
            ("another issuer", Issuer.Mint(null, audience: Audience, issuer: "https://accounts.example.test", anyRoom: false,
                claims: new Dictionary<string, object> { ["email"] = AllowedCaller }), "The ID token's issuer is not Api__Issuer."),
            ("a bad signature", Issuer.MintWithBadSignature(), "The ID token's signature could not be verified with the issuer's keys."),
            ("unsigned", Issuer.MintUnsigned(), "The ID token's signature could not be verified with the issuer's keys."),
        };
        foreach (var (what, token, detail) in refused)
        {
            using var http = Api(HostA, token);
            using var response = await http.PostAsync(Path(room), Json(new { user = "deploy-bot", text = what }), cancellationToken);
            Assert.That(await ProblemAsync(response, HttpStatusCode.Unauthorized, cancellationToken), Is.EqualTo(detail), what);
            Assert.That(response.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer error=\"invalid_token\""), what);
        }

        Assert.That((await PageAsync(Api(HostA), room, "", cancellationToken)).Messages, Has.Count.EqualTo(2), "only the allowed caller's posts");
    }

    [Test, CancelAfter(30_000)]
    public async Task No_key_or_token_ever_appears_in_a_log_line_at_any_level_or_in_an_answer(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("api secrets");
        var wrongKey = $"wrong-{Guid.NewGuid():N}";
        var refusedToken = IdToken(email: "intruder@other-project.iam.gserviceaccount.com");
        var answers = new List<string>();
        foreach (var credential in new[] { Key, SecondKey, wrongKey, IdToken(), refusedToken, Issuer.MintWithBadSignature() })
        {
            foreach (var host in new[] { HostA, HostB })
            {
                using var http = Api(host, credential);
                using var post = await http.PostAsync(Path(room), Json(new { user = "bot", text = "hello" }), cancellationToken);
                using var page = await http.GetAsync(Path(room) + "?limit=1", cancellationToken);
                using var bad = await http.PostAsync(Path(room), Json(new { user = "bot", text = 5 }), cancellationToken);
                foreach (var response in new[] { post, page, bad })
                {
                    answers.Add(string.Join('\n', response.Headers.Select(h => $"{h.Key}: {string.Join(',', h.Value)}"))
                        + await response.Content.ReadAsStringAsync(cancellationToken));
                }
            }
        }

        var lines = AllLogLines().ToList();
        Assert.That(lines, Has.Some.Contains("Server API request refused with 401 (key)"), "the refusals are logged, with their reason");
        Assert.That(lines, Has.Some.Contains("Server API request by key 1"), "at Debug: which key, by number");
        Assert.That(lines, Has.Some.Contains($"Server API request by {AllowedCaller}"));
        Assert.That(lines.Count(l => l.Contains("Request starting", StringComparison.Ordinal)), Is.GreaterThan(20), "request logs are captured too");
        var secrets = new[] { Key, SecondKey, wrongKey }.Concat(Issuer.Minted).ToList();
        foreach (var secret in secrets)
        {
            var fragment = secret.Length > 40 ? secret[^40..] : secret;   // a token's signature, or a whole key
            Assert.That(lines.Where(l => l.Contains(fragment, StringComparison.Ordinal)), Is.Empty);
            Assert.That(answers.Where(a => a.Contains(fragment, StringComparison.Ordinal)), Is.Empty);
        }
    }
}
