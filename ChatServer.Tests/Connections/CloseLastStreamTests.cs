using System.Net.WebSockets;
using System.Text;
using ChatServer.Connections;

namespace ChatServer.Tests.Connections;

/// <summary>The held writes of <see cref="CloseLastStream"/>: a burst of frames reaches the transport as one write.</summary>
public sealed class CloseLastStreamTests
{
    [Test]
    public async Task Frames_written_while_held_go_out_with_the_next_write_in_order()
    {
        var transport = new CountingStream();
        var wire = new CloseLastStream(transport);
        using var socket = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = Timeout.InfiniteTimeSpan });

        wire.HoldWrites = true;
        await socket.SendAsync(Encoding.UTF8.GetBytes("one"), WebSocketMessageType.Text, true, CancellationToken.None);
        await socket.SendAsync(Encoding.UTF8.GetBytes("two"), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.That(transport.Writes, Is.Zero);

        wire.HoldWrites = false;
        await socket.SendAsync(Encoding.UTF8.GetBytes("three"), WebSocketMessageType.Text, true, CancellationToken.None);

        Assert.That(transport.Writes, Is.EqualTo(1));
        Assert.That(transport.ToArray(), Is.EqualTo(Frame("one").Concat(Frame("two")).Concat(Frame("three")).ToArray()));
    }

    [Test]
    public async Task A_close_is_never_held_and_nothing_follows_it()
    {
        var transport = new CountingStream();
        var wire = new CloseLastStream(transport);
        using var socket = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = Timeout.InfiniteTimeSpan });

        wire.HoldWrites = true;
        await socket.SendAsync(Encoding.UTF8.GetBytes("one"), WebSocketMessageType.Text, true, CancellationToken.None);
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);

        Assert.That(transport.Writes, Is.EqualTo(1));
        Assert.That(wire.CloseSent, Is.True);
        Assert.That(transport.ToArray(), Is.EqualTo(Frame("one").Concat(new byte[] { 0x88, 0x02, 0x03, 0xE8 }).ToArray()));
    }

    private static byte[] Frame(string text) => [0x81, (byte)text.Length, .. Encoding.UTF8.GetBytes(text)];

    private sealed class CountingStream : MemoryStream
    {
        public int Writes { get; private set; }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes++;
            return base.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Writes++;
            return base.WriteAsync(buffer, offset, count, cancellationToken);
        }
    }
}
