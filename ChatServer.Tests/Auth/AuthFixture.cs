namespace ChatServer.Tests.Auth;

/// <summary>
/// A test OIDC issuer and two ChatServer instances on the test Redis configured with it (rooms claim <c>rooms</c>,
/// IAP's header, keys refreshable once a second). Both hosts log everything, ASP.NET Core's request logging included,
/// so the tests can check that no token ever reaches a log line at any level.
/// </summary>
public abstract class AuthFixture
{
    public const string IapHeader = "X-Goog-IAP-JWT-Assertion";

    protected TestIssuer Issuer { get; private set; } = null!;

    protected ChatHost HostA { get; private set; } = null!;

    protected ChatHost HostB { get; private set; } = null!;

    public static Dictionary<string, string?> Settings(TestIssuer issuer) => new()
    {
        ["Auth:Authority"] = issuer.Authority,
        ["Auth:Audience"] = TestIssuer.Audience,
        ["Auth:RequireHttpsMetadata"] = "false",
        ["Auth:RoomsClaim"] = "rooms",
        ["Auth:Header"] = IapHeader,
        ["Auth:KeyRefreshInterval"] = "00:00:01",
        [ChatHost.CaptureAllLogs] = "true",
    };

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Issuer = await TestIssuer.StartAsync();
        HostA = new ChatHost(TestRedis.ConnectionString, Settings(Issuer));
        HostB = new ChatHost(TestRedis.ConnectionString, Settings(Issuer));
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (HostB is not null)
        {
            await HostB.DisposeAsync();
        }

        if (HostA is not null)
        {
            await HostA.DisposeAsync();
        }

        if (Issuer is not null)
        {
            await Issuer.DisposeAsync();
        }
    }

    /// <summary>Connects and sends <c>auth</c> with <paramref name="token"/>; asserts the ack is ok.</summary>
    protected static async Task<ChatClient> AuthenticateAsync(Uri uri, string token, CancellationToken cancellationToken)
    {
        var client = await ChatClient.ConnectAsync(uri, cancellationToken, presence: false);
        var ack = await client.RequestAsync(new { type = "auth", token }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        return client;
    }

    /// <summary>Authenticates and signs in to <paramref name="room"/> without a <c>user</c> field.</summary>
    protected static async Task<ChatClient> SignInAsync(Uri uri, string token, string room, CancellationToken cancellationToken)
    {
        var client = await AuthenticateAsync(uri, token, cancellationToken);
        var ack = await client.RequestAsync(new { type = "signin", room }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        return client;
    }
}
