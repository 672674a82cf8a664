using System.Net;
using System.Net.WebSockets;
using System.Text.Json;

namespace ChatServer.Tests.Api;

/// <summary>docs/API.md's moderation endpoints over real HTTP on two instances: members, kick, bans.</summary>
public sealed class ApiModerationTests : ApiFixture
{
    protected override bool WithDatabase => false;

    [Test, CancelAfter(20_000)]
    public async Task Members_lists_each_user_with_their_connections_across_instances(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var alice1 = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        await using var alice2 = await ChatClient.SignInAsync(HostB.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(HostB.WebSocketUri, "bob", room, cancellationToken);
        using var http = Api(HostA);

        using var response = await http.GetAsync($"/api/rooms/{Uri.EscapeDataString(room)}/members", cancellationToken);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken)).RootElement;
        Assert.That(body.GetProperty("room").GetString(), Is.EqualTo(room));
        Assert.That(body.GetProperty("members").EnumerateArray().Select(m => (m.GetProperty("user").GetString(), m.GetProperty("connections").GetInt32())),
            Is.EqualTo(new[] { ("alice", 2), ("bob", 1) }));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_kick_closes_the_users_connections_on_both_instances_with_4003_and_its_reason(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var bob = await ChatClient.SignInAsync(HostA.WebSocketUri, "bob", room, cancellationToken);
        await using var malloryA = await ChatClient.SignInAsync(HostA.WebSocketUri, "mallory", room, cancellationToken);
        await using var malloryB = await ChatClient.SignInAsync(HostB.WebSocketUri, "mallory", room, cancellationToken);
        using var http = Api(HostB);

        using var response = await http.PostAsync($"/api/rooms/{Uri.EscapeDataString(room)}/kick", Json(new { user = "mallory", reason = "spam" }),
            cancellationToken);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken)).RootElement.GetProperty("closed").GetInt32(), Is.EqualTo(2));
        foreach (var kicked in new[] { malloryA, malloryB })
        {
            Assert.That(await kicked.WaitForCloseAsync(cancellationToken), Is.EqualTo((WebSocketCloseStatus)4003));
            Assert.That(kicked.CloseDescription, Is.EqualTo("spam"));
        }

        Assert.That((await bob.ExpectAsync(f => f.Type == "notification" && f.Title == "Someone just left", cancellationToken)).User, Is.EqualTo("mallory"));
    }

    [Test, CancelAfter(20_000)]
    public async Task A_kick_without_reason_says_removed_from_the_room(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var mallory = await ChatClient.SignInAsync(HostA.WebSocketUri, "mallory", room, cancellationToken);
        using var http = Api(HostA);
        using var response = await http.PostAsync($"/api/rooms/{Uri.EscapeDataString(room)}/kick", Json(new { user = "mallory" }), cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await mallory.WaitForCloseAsync(cancellationToken), Is.EqualTo((WebSocketCloseStatus)4003));
        Assert.That(mallory.CloseDescription, Is.EqualTo("removed from the room"));
    }

    [Test, CancelAfter(30_000)]
    public async Task A_ban_kicks_refuses_sign_in_on_both_instances_is_listed_and_can_be_lifted(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var mallory = await ChatClient.SignInAsync(HostB.WebSocketUri, "mallory", room, cancellationToken);
        using var http = Api(HostA);
        var bans = $"/api/rooms/{Uri.EscapeDataString(room)}/bans";

        using (var put = await http.PutAsync($"{bans}/mallory", Json(new { until = "2099-12-31T00:00:00Z", reason = "flooding" }), cancellationToken))
        {
            Assert.That(put.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        }

        Assert.That(await mallory.WaitForCloseAsync(cancellationToken), Is.EqualTo((WebSocketCloseStatus)4003));
        foreach (var host in new[] { HostA, HostB })
        {
            await using var again = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
            var refused = await again.RequestAsync(new { type = "signin", user = "mallory", room }, cancellationToken);
            Assert.That(refused.Error, Is.EqualTo($"You are banned from room '{room}' until 2099-12-31T00:00:00Z: flooding."));
        }

        var listed = JsonDocument.Parse(await http.GetStringAsync(bans, cancellationToken)).RootElement.GetProperty("bans");
        Assert.That(listed.EnumerateArray().Select(b => (b.GetProperty("user").GetString(), b.GetProperty("until").GetString(), b.GetProperty("reason").GetString())),
            Is.EqualTo(new[] { ("mallory", "2099-12-31T00:00:00Z", "flooding") }));

        using (var lift = await http.DeleteAsync($"{bans}/mallory", cancellationToken))
        {
            Assert.That(lift.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        }

        await using var back = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        Assert.That((await back.RequestAsync(new { type = "signin", user = "mallory", room }, cancellationToken)).Ok, Is.True);
        Assert.That(JsonDocument.Parse(await http.GetStringAsync(bans, cancellationToken)).RootElement.GetProperty("bans").GetArrayLength(), Is.Zero);
    }

    [Test, CancelAfter(20_000)]
    public async Task A_ban_without_until_is_listed_without_until(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        using var http = Api(HostA);
        var bans = $"/api/rooms/{Uri.EscapeDataString(room)}/bans";
        using (var put = await http.PutAsync($"{bans}/troll", Json(new { }), cancellationToken))
        {
            Assert.That(put.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        }

        var ban = JsonDocument.Parse(await http.GetStringAsync(bans, cancellationToken)).RootElement.GetProperty("bans").EnumerateArray().Single();
        Assert.That((ban.GetProperty("user").GetString(), ban.TryGetProperty("until", out _)), Is.EqualTo(("troll", false)));
        await using var client = await ChatClient.ConnectAsync(HostB.WebSocketUri, cancellationToken);
        Assert.That((await client.RequestAsync(new { type = "signin", user = "troll", room }, cancellationToken)).Error,
            Is.EqualTo($"You are banned from room '{room}' until the ban is lifted."));
    }

    [TestCase("kick", "POST", """{"reason":"x"}""", "Field 'user' is required and must be a string.")]
    [TestCase("kick", "POST", """{"user":"m","reason":5}""", "Field 'reason' must be a string.")]
    [TestCase("bans/m", "PUT", """{"until":"yesterday"}""", "Field 'until' must be a future time, ISO 8601 with an offset (2026-12-31T00:00:00Z), or be omitted (until lifted).")]
    [TestCase("bans/m", "PUT", """{"until":"2001-01-01T00:00:00Z"}""", "Field 'until' must be a future time, ISO 8601 with an offset (2026-12-31T00:00:00Z), or be omitted (until lifted).")]
    [CancelAfter(20_000)]
    public async Task Bad_moderation_bodies_are_400_naming_the_field(string path, string method, string body, string detail, CancellationToken cancellationToken)
    {
        using var http = Api(HostA);
        using var request = new HttpRequestMessage(new HttpMethod(method), $"/api/rooms/{Uri.EscapeDataString(TestNames.Room())}/{path}") { Content = Json(body) };
        using var response = await http.SendAsync(request, cancellationToken);
        Assert.That(await ProblemAsync(response, HttpStatusCode.BadRequest, cancellationToken), Is.EqualTo(detail));
    }

    [Test, CancelAfter(20_000)]
    public async Task Moderation_needs_credentials(CancellationToken cancellationToken)
    {
        using var http = Client(HostA, bearer: null);
        using var response = await http.GetAsync($"/api/rooms/{Uri.EscapeDataString(TestNames.Room())}/bans", cancellationToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
    }
}
