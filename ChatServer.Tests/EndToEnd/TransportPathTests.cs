namespace ChatServer.Tests.EndToEnd;

/// <summary>
/// Every WebSocket is upgraded by the minimal-API endpoint through ASP.NET Core, whatever the traffic's shape: a fresh
/// TCP connection's upgrade and one on a reused keep-alive connection both get Kestrel's 101 (with its <c>Server</c>
/// header) and speak the same protocol in one room.
/// </summary>
public sealed class TransportPathTests
{
    [Test, CancelAfter(30_000)]
    public async Task A_fresh_upgrade_and_one_on_a_reused_connection_both_go_through_the_endpoint_into_one_room(
        CancellationToken cancellationToken)
    {
        await using var host = new ChatHost(TestRedis.ConnectionString);
        var room = TestNames.Room("paths");

        await using var fresh = await RawWebSocket.ConnectAsync(host.WebSocketUri, cancellationToken);
        Assert.That(fresh.UpgradeResponse, Does.StartWith("HTTP/1.1 101 ").And.Contain("Server: Kestrel"));

        await using var reused = await RawWebSocket.ConnectAsync(host.WebSocketUri, cancellationToken, plainRequestFirst: "/healthz");
        Assert.That(reused.PlainResponse, Does.StartWith("HTTP/1.1 200 "));
        Assert.That(reused.UpgradeResponse, Does.StartWith("HTTP/1.1 101 ").And.Contain("Server: Kestrel"));

        await fresh.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = 1, user = "fresh", room }), cancellationToken);
        await fresh.ExpectAsync(f => f.IsAck(1), cancellationToken);
        await reused.SendRawAsync(RawWebSocket.Text(new { type = "signin", id = 1, user = "reused", room }), cancellationToken);
        await reused.ExpectAsync(f => f.IsAck(1), cancellationToken);

        await fresh.SendRawAsync(RawWebSocket.Text(new { type = "sendMessage", id = 2, text = "from a fresh connection" }), cancellationToken);
        var first = await reused.ExpectAsync(f => f.Type == "message", cancellationToken);
        await reused.SendRawAsync(RawWebSocket.Text(new { type = "sendMessage", id = 2, text = "from a reused connection" }), cancellationToken);
        var second = await fresh.ExpectAsync(f => f.Type == "message" && f.User == "reused", cancellationToken);
        Assert.That((new Frame(first.Text).Text, new Frame(second.Text).Text),
            Is.EqualTo(("from a fresh connection", "from a reused connection")));
    }
}
