using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using ChatServer.Connections;

namespace ChatServer.Tests.Connections;

/// <summary>
/// <see cref="WireOutput"/>, the two ways a raw connection writes: straight onto the socket (a write the kernel cannot
/// take at once finishes asynchronously, bytes in order) and, for a transport without a socket, its pipe.
/// </summary>
public sealed class WireOutputTests
{
    [Test, CancelAfter(30_000)]
    public async Task A_socket_write_larger_than_the_kernel_takes_at_once_completes_later_with_every_byte_in_order(CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
        using var server = await listener.AcceptAsync(cancellationToken);
        server.SendBufferSize = 4096;

        var data = new byte[4 * 1024 * 1024];
        new Random(7).NextBytes(data);
        var output = WireOutput.For(server, new Pipe().Writer);
        var write = output.WriteAsync(data);
        Assert.That(write.IsCompleted, Is.False, "4 MiB to a peer that has not read yet cannot all go out at once");

        var received = new byte[data.Length];
        var reading = Task.Run(async () =>
        {
            var total = 0;
            while (total < received.Length)
            {
                var read = await client.ReceiveAsync(received.AsMemory(total), SocketFlags.None, cancellationToken);
                Assert.That(read, Is.GreaterThan(0), "the stream ended early");
                total += read;
            }
        }, cancellationToken);

        await write;
        await reading;
        Assert.That(received, Is.EqualTo(data));
    }

    [Test]
    public async Task Without_a_socket_the_bytes_go_through_the_transport_pipe()
    {
        var pipe = new Pipe();
        var output = WireOutput.For(null, pipe.Writer);
        await output.WriteAsync(new byte[] { 0x81, 0x02, (byte)'h', (byte)'i' });
        await output.WriteAsync(new byte[] { 0x88, 0x00 });

        var result = await pipe.Reader.ReadAsync();
        Assert.That(result.Buffer.ToArray(), Is.EqualTo(new byte[] { 0x81, 0x02, (byte)'h', (byte)'i', 0x88, 0x00 }));
    }
}
