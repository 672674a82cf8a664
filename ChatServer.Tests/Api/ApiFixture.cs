using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace ChatServer.Tests.Api;

/// <summary>
/// Two instances with the server API on (two keys, and ID tokens from a <see cref="TestIssuer"/> for one allowed
/// caller), on the shared test Redis under a key prefix of their own (an erasure scans every room of its prefix) and,
/// unless <see cref="WithDatabase"/> is false, one fresh PostgreSQL database. Both hosts log every level of every
/// category, so a test can look for a credential in any line.
/// </summary>
public abstract class ApiFixture
{
    public const string Audience = "https://chat.example.test";

    public const string AllowedCaller = "deploy@example-project.iam.gserviceaccount.com";

    /// <summary>The first API key: random per fixture, so no line can hold it by accident.</summary>
    protected string Key { get; } = $"key0-{Guid.NewGuid():N}";

    /// <summary>The second API key (keys rotate: both work).</summary>
    protected string SecondKey { get; } = $"key1-{Guid.NewGuid():N}";

    protected TestIssuer Issuer { get; private set; } = null!;

    protected ChatHost HostA { get; private set; } = null!;

    protected ChatHost HostB { get; private set; } = null!;

    /// <summary>The fixture's PostgreSQL database (a connection string), or "" without one.</summary>
    protected string Database { get; private set; } = "";

    protected string KeyPrefix { get; } = $"api{Guid.NewGuid():N}:";

    protected virtual bool WithDatabase => true;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Issuer = await TestIssuer.StartAsync();
        if (WithDatabase)
        {
            Database = await TestPostgres.CreateDatabaseAsync("api");
        }

        HostA = new ChatHost(TestRedis.ConnectionString, Settings());
        HostB = new ChatHost(TestRedis.ConnectionString, Settings());
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

    private Dictionary<string, string?> Settings()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Api:Keys:0"] = Key,
            ["Api:Keys:1"] = SecondKey,
            ["Api:Audience"] = Audience,
            ["Api:Issuer"] = Issuer.Authority,
            ["Api:RequireHttpsMetadata"] = "false",
            ["Api:AllowedCallers:0"] = AllowedCaller,
            ["Redis:KeyPrefix"] = KeyPrefix,
            [ChatHost.CaptureAllLogs] = "true",
        };
        if (WithDatabase)
        {
            settings["History:ConnectionString"] = Database;
            settings["History:ReconcileInterval"] = "00:00:00.5";
        }

        return settings;
    }

    /// <summary>An HTTP client for <paramref name="host"/> that sends <paramref name="bearer"/> (the first key unless told; <c>null</c>: none).</summary>
    protected HttpClient Api(ChatHost host, string? bearer = "") => Client(host, bearer == "" ? Key : bearer);

    public static HttpClient Client(ChatHost host, string? bearer)
    {
        var http = host.CreateHttpClient();
        if (bearer is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        return http;
    }

    /// <summary>An ID token as Google's metadata server gives a service account: <c>email</c>, <c>email_verified</c>, no name.</summary>
    protected string IdToken(string email = AllowedCaller, string audience = Audience, TimeSpan? lifetime = null) =>
        Issuer.Mint(name: null, audience: audience, lifetime: lifetime, anyRoom: false,
            claims: new Dictionary<string, object> { ["email"] = email, ["email_verified"] = true });

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static StringContent Json(object body) => Json(JsonSerializer.Serialize(body));

    public static string Path(string room) => $"/api/rooms/{Uri.EscapeDataString(room)}/messages";

    /// <summary>Posts <paramref name="text"/> as <paramref name="user"/>; asserts 201 and returns the answer.</summary>
    public static async Task<JsonElement> PostAsync(HttpClient http, string room, string user, string text, CancellationToken cancellationToken,
        string? key = null)
    {
        using var response = await http.PostAsync(Path(room), Json(key is null ? new { user, text } : new { user, text, key }), cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created), body);
        return JsonDocument.Parse(body).RootElement;
    }

    /// <summary>Asserts a problem+json answer with <paramref name="status"/> and returns its <c>detail</c>.</summary>
    public static async Task<string> ProblemAsync(HttpResponseMessage response, HttpStatusCode status, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(status), body);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"), body);
        using var problem = JsonDocument.Parse(body);
        Assert.That(problem.RootElement.GetProperty("status").GetInt32(), Is.EqualTo((int)status));
        return problem.RootElement.GetProperty("detail").GetString()!;
    }

    /// <summary>GETs a page; asserts 200 and returns it.</summary>
    public static async Task<Frame> PageAsync(HttpClient http, string room, string query, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(Path(room) + query, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), body);
        return new Frame(body);
    }

    /// <summary>One scalar from the fixture's database.</summary>
    protected async Task<T> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Polls until <paramref name="condition"/> holds (the database is written behind the chat).</summary>
    protected static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        while (!await condition())
        {
            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Every log line of both hosts.</summary>
    protected IEnumerable<string> AllLogLines() => HostA.Logs.Entries.Concat(HostB.Logs.Entries).Select(e => $"{e.Category}: {e.Message}");
}
