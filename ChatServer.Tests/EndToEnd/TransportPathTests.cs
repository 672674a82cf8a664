namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// Which transport a WebSocket gets (issue 11): a fresh connection's upgrade to <c>/ws</c> is answered at the
/// connection level and framed by the server (no HTTP/1.1 connection under it: its 101 carries none of Kestrel's
/// response headers), while an upgrade that reaches the HTTP pipeline (a keep-alive connection's second request, or
/// <c>Chat:DirectWebSockets=false</c>) runs on ASP.NET Core's WebSocket. Both speak the same protocol, in one room.
/// </summary>
public sealed class TransportPathTests
{
    [Test, CancelAfter(30_000)]
    public async Task A_fresh_upgrade_is_taken_before_HTTP_and_a_reused_connection_gets_the_stock_path_in_the_same_room(
        CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(TestRedis.ConnectionString);
        var room = TestNames.Room("paths");

        await using var direct = await RawWebSocket.ConnectAsync(host.WebSocketUri, cancellationToken);
        Assert.That(direct.UpgradeResponse, Does.StartWith("HTTP/1.1 101 ").And.Not.Contain("Server: Kestrel"));

        await using var reused = await RawWebSocket.ConnectAsync(host.WebSocketUri, cancellationToken, plainRequestFirst: "/healthz");
        Assert.That(reused.PlainResponse, Does.StartWith("HTTP/1.1 200 "));
        Assert.That(reused.UpgradeResponse, Does.StartWith("HTTP/1.1 101 ").And.Contain("Server: Kestrel"));

        await direct.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = 1, user = "direct", room }), cancellationToken);
        await direct.ExpectAsync(f => f.IsAck(1), cancellationToken);
        await reused.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = 1, user = "reused", room }), cancellationToken);
        await reused.ExpectAsync(f => f.IsAck(1), cancellationToken);

        await direct.SendRawAsync(RawWebSocket.Text(new { type = "sendMessage", id = 2, text = "from the direct path" }), cancellationToken);
        var first = await reused.ExpectAsync(f => f.Type == "message", cancellationToken);
        await reused.SendRawAsync(RawWebSocket.Text(new { type = "sendMessage", id = 2, text = "from the stock path" }), cancellationToken);
        var second = await direct.ExpectAsync(f => f.Type == "message" && f.User == "reused", cancellationToken);
        Assert.That((new Frame(first.Text).Text, new Frame(second.Text).Text), Is.EqualTo(("from the direct path", "from the stock path")));
    }

    [Test, CancelAfter(30_000)]
    public async Task With_direct_WebSockets_off_every_upgrade_goes_through_the_HTTP_pipeline(CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(TestRedis.ConnectionString, new Dictionary<string, string?> { ["Chat:DirectWebSockets"] = "false" });
        await using var client = await RawWebSocket.ConnectAsync(host.WebSocketUri, cancellationToken);
        Assert.That(client.UpgradeResponse, Does.Contain("Server: Kestrel"));
        await client.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = 1, user = "stock", room = TestNames.Room("stock") }), cancellationToken);
        var ack = await client.ExpectAsync(f => f.IsAck(1), cancellationToken);
        Assert.That(new Frame(ack.Text).Ok, Is.True, ack.Text);
    }
}
