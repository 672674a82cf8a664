using System.Net;
using Microsoft.Extensions.Options;

namespace ChatServer.Tests.Api;

/// <summary>The server API is off unless configured (every <c>/api</c> path a 404), and bad settings stop the server at start.</summary>
public sealed class ApiSettingsTests
{
    [Test, CancelAfter(20_000)]
    public async Task Without_keys_or_an_audience_every_api_path_is_404_as_any_unknown_path(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(null, new Dictionary<string, string?> { ["Api:Keys:0"] = "", ["Api:AllowedCallers:0"] = "x@example.com" });
        using var http = ApiFixture.Client(host, "whatever-0123456789");
        foreach (var (method, path) in new[] { (HttpMethod.Post, "/api/rooms/r/messages"), (HttpMethod.Get, "/api/rooms/r/messages"),
                     (HttpMethod.Delete, "/api/rooms/r/messages/e/1"), (HttpMethod.Delete, "/api/users/u/messages"), (HttpMethod.Get, "/api/openapi.json"),
                     (HttpMethod.Get, "/api/nothing-here") })
        {
            using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Post ? ApiFixture.Json(new { user = "u", text = "t" }) : null };
            using var response = await http.SendAsync(request, cancellationToken);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), $"{method} {path}");
        }

        Assert.That(host.Logs.Contains("Server API on"), Is.False);
    }

    [TestCase("Api:Keys:0", "short-key", "Keys")]
    [TestCase("Api:AllowedCallers:0", "", "AllowedCallers")]   // an audience without callers: any Google account could call
    [TestCase("Api:Issuer", "http://issuer.invalid", "Issuer")]
    [CancelAfter(60_000)]
    public async Task Invalid_api_settings_stop_the_server_at_start(string key, string value, string named, CancellationToken cancellationToken)
    {
        var settings = new Dictionary<string, string>
        {
            ["Api:Keys:0"] = "a-long-enough-key-0123456789",
            ["Api:Audience"] = "https://chat.example.test",
            ["Api:AllowedCallers:0"] = "deploy@example.iam.gserviceaccount.com",
            [key] = value,
        };

        var (exitCode, output) = await ChatProcess.RunFailingStartAsync(settings, cancellationToken);

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(output, Does.Contain(nameof(OptionsValidationException)).And.Contain($"Api:{named}"));
    }
}
