using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace ChatServer.Tests.Conformance;

/// <summary>The .NET <see cref="ClientWebSocket"/> against the server: fragmentation, binary messages, the close handshake.</summary>
public sealed class ClientWebSocketConformanceTests : ConformanceFixture
{
    [Test, CancelAfter(20_000)]
    public async Task A_signin_sent_in_fragments_gets_its_ack(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-cws-frag");
        using var socket = await ConnectAsync(cancellationToken);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new { type = "signin", id = "frag", user = "alice", room });
        for (var at = 0; at < bytes.Length; at += 7)   // 7-byte pieces: many continuation frames
        {
            var end = Math.Min(at + 7, bytes.Length);
            await socket.SendAsync(bytes.AsMemory(at, end - at), WebSocketMessageType.Text, endOfMessage: end == bytes.Length, cancellationToken);
        }

        var ack = await ReceiveTextAsync(socket, f => f.IsAck("frag"), cancellationToken);
        Assert.That((ack.Ok, ack.Room, ack.HasMessages), Is.EqualTo((true, room, true)), ack.Raw);
    }

    [Test, CancelAfter(20_000)]
    public async Task A_binary_message_gets_an_error_ack_and_the_connection_stays_usable(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-cws-binary");
        using var socket = await ConnectAsync(cancellationToken);
        var json = JsonSerializer.SerializeToUtf8Bytes(new { type = "signin", id = "bin", user = "alice", room });
        await socket.SendAsync(json, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        var rejected = await ReceiveTextAsync(socket, f => f.Type == "ack", cancellationToken);
        Assert.That((rejected.IdJson, rejected.Ok, rejected.Error),
            Is.EqualTo(("null", false, "Binary frames are not accepted: send one JSON object per text frame.")), rejected.Raw);

        // Also fragmented binary, then the same frame as text: still answered.
        await socket.SendAsync(json.AsMemory(0, 5), WebSocketMessageType.Binary, endOfMessage: false, cancellationToken);
        await socket.SendAsync(json.AsMemory(5), WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        var again = await ReceiveTextAsync(socket, f => f.Type == "ack", cancellationToken);
        Assert.That((again.IdJson, again.Ok), Is.EqualTo(("null", false)), again.Raw);

        await socket.SendAsync(json, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        var ack = await ReceiveTextAsync(socket, f => f.Type == "ack", cancellationToken);
        Assert.That((ack.IdJson, ack.Ok, ack.Room), Is.EqualTo(("\"bin\"", true, room)), ack.Raw);
        Assert.That(socket.State, Is.EqualTo(WebSocketState.Open));
    }

    [Test, CancelAfter(20_000)]
    public async Task CloseAsync_completes_the_handshake_with_the_servers_1000(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("conf-cws-close");
        using var socket = await ConnectAsync(cancellationToken);
        await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { type = "signin", id = "in", user = "alice", room }),
            WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        await ReceiveTextAsync(socket, f => f.IsAck("in"), cancellationToken);

        // CloseAsync sends Close and reads (skipping data frames) until the server's Close arrives.
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cancellationToken);

        Assert.That((socket.State, socket.CloseStatus, socket.CloseStatusDescription),
            Is.EqualTo((WebSocketState.Closed, (WebSocketCloseStatus?)WebSocketCloseStatus.NormalClosure, "")));
    }

    private async Task<ClientWebSocket> ConnectAsync(CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(Host.WebSocketUri, cancellationToken);
        return socket;
    }

    /// <summary>Reads whole text messages until one matches; any other message type fails the test.</summary>
    private static async Task<Frame> ReceiveTextAsync(ClientWebSocket socket, Func<Frame, bool> match, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            using var message = new MemoryStream();
            WebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer, cancellationToken);
                Assert.That(result.MessageType, Is.EqualTo(WebSocketMessageType.Text), $"close {result.CloseStatus} {result.CloseStatusDescription}");
                message.Write(buffer, 0, result.Count);
            }
            while (!result.EndOfMessage);

            var frame = new Frame(Encoding.UTF8.GetString(message.ToArray()));
            if (match(frame))
            {
                return frame;
            }
        }
    }
}
