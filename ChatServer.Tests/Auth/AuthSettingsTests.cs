using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace ChatServer.Tests.Auth;

/// <summary>
/// The settings around the contract: an IAP-like issuer (keys from a bare JWKS URL, a name from <c>email</c>, the token
/// in IAP's header), start-up validation, and v1 unchanged without an authority.
/// </summary>
public sealed class AuthSettingsTests
{
    [Test, CancelAfter(30_000)]
    public async Task An_issuer_without_discovery_works_through_its_jwks_url_with_the_email_as_name(CancellationToken cancellationToken)
    {
        const string iapIssuer = "https://iap.test.invalid/iap";   // never fetched: the keys come from Auth:JwksUri
        await using var issuer = await TestIssuer.StartAsync();
        var settings = new Dictionary<string, string?>(AuthFixture.Settings(issuer))
        {
            ["Auth:Authority"] = iapIssuer,
            ["Auth:JwksUri"] = $"{issuer.Authority}/jwks",
        };
        await using var host = new ChatHost(TestRedis.ConnectionString, settings);
        var token = issuer.Mint(name: null, alg: SecurityAlgorithms.EcdsaSha256, issuer: iapIssuer,
            claims: new Dictionary<string, object> { ["email"] = "ines@example.com" }, subject: "accounts.google.com:1234");

        await using var ines = await ChatClient.ConnectWithHeadersAsync(host.WebSocketUri,
            new Dictionary<string, string> { [AuthFixture.IapHeader] = token }, cancellationToken);
        var room = TestNames.Room();
        Assert.That((await ines.RequestAsync(new { type = "signin", room }, cancellationToken)).Ok, Is.True);
        await ines.RequestAsync(new { type = "sendMessage", text = "behind the proxy" }, cancellationToken);
        Assert.That((await ines.ExpectAsync(f => f.Type == "message", cancellationToken)).User, Is.EqualTo("ines@example.com"));
    }

    [TestCase("Auth:Audience", "")]
    [TestCase("Auth:Authority", "http://issuer.invalid")]   // http needs RequireHttpsMetadata=false
    [TestCase("Auth:Authority", "not a url")]
    [TestCase("Auth:KeyRefreshInterval", "00:00:00.5")]
    [CancelAfter(60_000)]
    public async Task Invalid_auth_settings_stop_the_server_at_start(string key, string value, CancellationToken cancellationToken)
    {
        var settings = new Dictionary<string, string>
        {
            ["Auth:Authority"] = "https://issuer.invalid",
            ["Auth:Audience"] = "project",
            [key] = value,
        };

        var (exitCode, output) = await ChatProcess.RunFailingStartAsync(settings, cancellationToken);

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(output, Does.Contain(nameof(OptionsValidationException)).And.Contain(key.Split(':')[1]));
    }

    [Test, CancelAfter(30_000)]
    public async Task Without_an_authority_v1_is_unchanged_and_an_auth_frame_is_refused(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(null);
        using var http = host.CreateHttpClient();
        Assert.That(await http.GetStringAsync("/auth/config", cancellationToken), Is.EqualTo("""{"required":false}"""));

        await using var client = await ChatClient.SignInAsync(host.WebSocketUri, "alice", TestNames.Room(), cancellationToken);
        var ack = await client.RequestAsync(new { type = "auth", token = "eyJ.x.y" }, cancellationToken);
        Assert.That(ack.Ok, Is.False);
        Assert.That(ack.Error, Does.Contain("not enabled"));
        Assert.That((await client.RequestAsync(new { type = "sendMessage", text = "v1" }, cancellationToken)).Ok, Is.True);
    }
}
