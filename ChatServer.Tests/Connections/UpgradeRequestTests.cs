using System.Buffers;
using System.Text;
using ChatServer.Connections;

namespace ChatServer.Tests.Connections;

/// <summary>
/// What <see cref="DirectUpgrade"/> takes for itself: only a plain, unambiguous RFC 6455 upgrade. Everything else is
/// null here and goes on to Kestrel and the endpoint untouched (their answers are checked end to end in
/// <c>Conformance/HandshakeConformanceTests</c>).
/// </summary>
public sealed class UpgradeRequestTests
{
    private const string Key = "dGhlIHNhbXBsZSBub25jZQ==";

    private static string Head(string requestLine = "GET /ws HTTP/1.1", params string[] headers)
    {
        var lines = headers.Length > 0 ? headers :
            ["Host: chat.example", "Upgrade: websocket", "Connection: Upgrade", $"Sec-WebSocket-Key: {Key}", "Sec-WebSocket-Version: 13"];
        return requestLine + "\r\n" + string.Join("\r\n", lines) + "\r\n\r\n";
    }

    private static UpgradeRequest? Parse(string head) => UpgradeRequest.Parse(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(head)));

    [Test]
    public void A_plain_upgrade_is_taken_with_its_key_and_headers_read_case_insensitively()
    {
        var request = Parse(Head("GET /ws?room=a HTTP/1.1", "host: chat.example", "UPGRADE: WebSocket", "connection: keep-alive, Upgrade",
            $"sec-websocket-key:   {Key}  ", "Sec-WebSocket-Version: 13", "Origin: https://chat.example", "X-Forwarded-Proto: https"));

        Assert.That(request, Is.Not.Null);
        Assert.That((request!.Key, request.Header("Origin"), request.Header("x-forwarded-proto"), request.Header("Authorization")),
            Is.EqualTo((Key, "https://chat.example", "https", (string?)null)));
    }

    [Test]
    public void Upgrade_and_Connection_may_each_come_in_several_lines()
    {
        var request = Parse(Head("GET /ws HTTP/1.1", "Host: h", "Upgrade: h2c", "Upgrade: websocket", "Connection: keep-alive",
            "Connection: upgrade", $"Sec-WebSocket-Key: {Key}", "Sec-WebSocket-Version: 13"));
        Assert.That(request?.Header("Upgrade"), Is.EqualTo("h2c, websocket"));
    }

    [TestCase("GET /ws HTTP/1.0", TestName = "HTTP/1.0")]
    [TestCase("GET /ws HTTP/1.1 extra", TestName = "a request line with four parts")]
    public void Another_request_line_is_left_to_Kestrel(string requestLine) => Assert.That(Parse(Head(requestLine)), Is.Null);

    [TestCase("Upgrade: h2c", TestName = "no websocket in Upgrade")]
    [TestCase("Connection: keep-alive", TestName = "no upgrade in Connection")]
    [TestCase("Sec-WebSocket-Version: 8", TestName = "version 8")]
    [TestCase("Sec-WebSocket-Key: c2hvcnQ=", TestName = "a key of 5 bytes")]
    [TestCase("Host", TestName = "no Host")]
    [TestCase("Content-Length: 5", TestName = "a body")]
    [TestCase("Transfer-Encoding: chunked", TestName = "a chunked body")]
    [TestCase("Origin: https://a.example", TestName = "two Origins")]
    [TestCase(" folded", TestName = "a folded header")]
    [TestCase("Bad Name: x", TestName = "whitespace before the colon")]
    public void An_unusual_or_broken_upgrade_is_left_to_Kestrel(string change)
    {
        List<string> headers = ["Host: h", "Upgrade: websocket", "Connection: Upgrade", $"Sec-WebSocket-Key: {Key}", "Sec-WebSocket-Version: 13",
            "Origin: https://b.example"];
        var name = change.Split(':')[0];
        if (change == "Host")
        {
            headers.RemoveAt(0);
        }
        else if (name is "Upgrade" or "Connection" or "Sec-WebSocket-Version" or "Sec-WebSocket-Key")
        {
            headers[headers.FindIndex(h => h.StartsWith(name + ":", StringComparison.Ordinal))] = change;
        }
        else
        {
            headers.Add(change);
        }

        Assert.That(Parse(Head("GET /ws HTTP/1.1", [.. headers])), Is.Null, string.Join(" | ", headers));
    }
}
