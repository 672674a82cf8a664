using System.Net;
using System.Net.WebSockets;

namespace ChatServer.Tests.EndToEnd;

/// <summary>Plain HTTP, the Origin check, the connection cap, shutdown and start-up validation.</summary>
public sealed class HttpAndLifecycleTests
{
    [Test, CancelAfter(15_000)]
    public async Task Health_ready_page_plain_ws_and_unknown_paths_answer_as_the_protocol_says(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(TestRedis.ConnectionString);
        using var http = host.CreateHttpClient();

        Assert.That((await http.GetAsync("/healthz", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await http.GetAsync("/readyz", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await http.GetAsync("/ws", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await http.GetAsync("/no-such-page", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        var page = await http.GetAsync("/", cancellationToken);
        Assert.That(page.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(page.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/html"));
    }

    [Test, CancelAfter(15_000)]
    public async Task Readyz_is_503_when_the_configured_redis_cannot_be_reached(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost("127.0.0.1:1,connectTimeout=200");   // nothing listens on port 1
        using var http = host.CreateHttpClient();

        Assert.That((await http.GetAsync("/healthz", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await http.GetAsync("/readyz", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));

        await using var client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        var ack = await client.RequestAsync(new { type = "signin", user = "a", room = TestNames.Room() }, cancellationToken);
        Assert.That((ack.Ok, ack.Error), Is.EqualTo((false, "The message store is unavailable; nothing was stored. Try again shortly.")));
    }

    [Test, CancelAfter(15_000)]
    public async Task Origin_check_refuses_foreign_sites_and_accepts_the_own_origin_and_clients_without_origin(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(null, new Dictionary<string, string?> { ["Chat:AllowedOrigins:0"] = "https://chat.example.com" });
        var own = host.BaseUri.GetLeftPart(UriPartial.Authority);

        var foreign = Assert.ThrowsAsync<WebSocketException>(() => ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken, "https://evil.example"));
        Assert.That(foreign!.Message, Does.Contain("403"));
        await using (await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken, own)) { }
        await using (await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken, "https://chat.example.com")) { }
        await using (await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken)) { }
    }

    [Test, CancelAfter(15_000)]
    public async Task Origin_check_honours_forwarded_proto_and_host_from_a_proxy(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(null);
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", "https://chat-abc.a.run.app");
        socket.Options.SetRequestHeader("X-Forwarded-Proto", "https");
        socket.Options.SetRequestHeader("X-Forwarded-Host", "chat-abc.a.run.app");

        await socket.ConnectAsync(host.WebSocketUri, cancellationToken);

        Assert.That(socket.State, Is.EqualTo(WebSocketState.Open));
        socket.Abort();
    }

    [Test, CancelAfter(15_000)]
    public async Task Clients_without_origin_can_be_refused_by_configuration(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(null, new Dictionary<string, string?> { ["Chat:AllowRequestsWithoutOrigin"] = "false" });

        var refused = Assert.ThrowsAsync<WebSocketException>(() => ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken));
        Assert.That(refused!.Message, Does.Contain("403"));
    }

    [Test, CancelAfter(15_000)]
    public async Task Upgrades_beyond_MaxConnections_get_503_until_a_slot_frees(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(null, new Dictionary<string, string?> { ["Chat:MaxConnections"] = "2" });
        var first = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        await using var second = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);

        var refused = Assert.ThrowsAsync<WebSocketException>(() => ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken));
        Assert.That(refused!.Message, Does.Contain("503"));

        await first.DisposeAsync();
        ChatClient? third = null;
        while (third is null)   // the server frees the slot once the close handshake is done
        {
            try
            {
                third = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
            }
            catch (WebSocketException)
            {
                await Task.Delay(20, cancellationToken);
            }
        }

        await third.DisposeAsync();
    }

    [Test, CancelAfter(20_000)]
    public async Task Shutdown_closes_open_connections_with_1012_and_the_room_hears_the_leave(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await using var survivor = new ChatHost(TestRedis.ConnectionString);
        var stopping = new ChatHost(TestRedis.ConnectionString);
        await using var watcher = await ChatClient.SignInAsync(survivor.WebSocketUri, "watcher", room, cancellationToken);
        await using var alice = await ChatClient.SignInAsync(stopping.WebSocketUri, "alice", room, cancellationToken);
        await watcher.ExpectAsync(f => f.Type == "notification", cancellationToken);

        var disposing = stopping.DisposeAsync().AsTask();

        Assert.That(await alice.WaitForCloseAsync(cancellationToken), Is.EqualTo((WebSocketCloseStatus)1012));
        var left = await watcher.NextAsync(cancellationToken);
        Assert.That((left.Type, left.User, left.Title), Is.EqualTo(("notification", "alice", "Someone just left")));
        await disposing.WaitAsync(cancellationToken);
    }

    // A real process, as a container starts: the test host's deferred start can hide the validation error behind an
    // ObjectDisposedException when the app fails that fast.
    [TestCase("Chat__HistoryLength", "0", "HistoryLength")]
    [TestCase("Chat__MaxFrameBytes", "10", "MaxFrameBytes")]
    [TestCase("Chat__CloseTimeout", "00:01:00", "CloseTimeout")]
    [TestCase("Chat__HistoryTtl", "-00:00:01", "HistoryTtl")]
    [TestCase("Chat__HistoryTtl", "00:00:00.5", "HistoryTtl")]
    [TestCase("Chat__MaxInProcessRooms", "0", "MaxInProcessRooms")]
    [CancelAfter(60_000)]
    public async Task Invalid_options_stop_the_server_at_start(string key, string value, string option, CancellationToken cancellationToken)
    {
        using var server = ChatProcess.Start("", new Dictionary<string, string> { [key] = value });

        Assert.That(await server.WaitForExitAsync(cancellationToken), Is.Not.Zero);
        Assert.That(server.Output, Has.Some.Contains("OptionsValidationException").And.Some.Contains(option));
    }
}
