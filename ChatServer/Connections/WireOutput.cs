using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace ChatServer.Connections;

/// <summary>
/// Where a <see cref="RawChatConnection"/> writes its bytes. <see cref="WriteAsync"/> completes synchronously when the
/// bytes went out at once (the common case: a socket with room in its send buffer); otherwise the caller awaits the
/// returned task before it writes again. One writer at a time.
/// </summary>
internal abstract class WireOutput
{
    /// <summary>The socket under Kestrel's transport when it has one, else the transport's own output pipe.</summary>
    public static WireOutput For(Socket? socket, PipeWriter transport) =>
        socket is not null ? new SocketOutput(socket) : new PipeOutput(transport);

    public abstract ValueTask WriteAsync(ReadOnlyMemory<byte> bytes);

    /// <summary>The socket written to, when there is one (a <see cref="SendBatch"/> can send to it).</summary>
    public virtual Socket? Socket => null;

    /// <summary>
    /// Straight onto the socket from the thread that delivers, as Node's libuv does: a non-blocking <c>send</c> that
    /// takes the whole frame is the end of it (no pipe, no flush, no hop to Kestrel's I/O thread); whatever does not fit
    /// goes out asynchronously and later frames wait behind it. Kestrel never writes to a socket it handed to us (the
    /// connection never reaches its HTTP layer), and its receive side is untouched.
    /// </summary>
    private sealed class SocketOutput : WireOutput
    {
        private readonly Socket _socket;

        /// <summary>
        /// The kernel's send buffer per socket: fixed, instead of autotuned up to megabytes, so a peer that stops reading
        /// is found after a bounded number of bytes (this, then <see cref="Hosting.ChatOptions.OutgoingQueueCapacity"/>
        /// frames in the server: 1008), and idle sockets cannot pin megabytes of kernel memory. Linux doubles it; 64 KiB
        /// is hundreds of chat frames, more than a second of the busiest member in the load tests.
        /// </summary>
        public const int SendBufferBytes = 64 * 1024;

        public SocketOutput(Socket socket)
        {
            _socket = socket;
            _socket.Blocking = false;   // a synchronous Send returns WouldBlock instead of parking the delivering thread
            _socket.SendBufferSize = SendBufferBytes;
        }

        public override Socket? Socket => _socket;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> bytes)
        {
            var sent = _socket.Send(bytes.Span, SocketFlags.None, out var error);
            if (error == SocketError.Success && sent == bytes.Length)
            {
                return default;
            }

            if (error is not (SocketError.Success or SocketError.WouldBlock))
            {
                throw new SocketException((int)error);
            }

            return SendRestAsync(bytes[Math.Max(sent, 0)..]);
        }

        private async ValueTask SendRestAsync(ReadOnlyMemory<byte> rest)
        {
            while (rest.Length > 0)
            {
                rest = rest[await _socket.SendAsync(rest, SocketFlags.None)..];
            }
        }
    }

    /// <summary>A transport without a socket (another Kestrel transport): its pipe, one flush per write.</summary>
    private sealed class PipeOutput(PipeWriter writer) : WireOutput
    {
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> bytes)
        {
            writer.Write(bytes.Span);
            var flush = writer.FlushAsync();
            return flush.IsCompletedSuccessfully ? default : AwaitAsync(flush);
        }

        private static async ValueTask AwaitAsync(ValueTask<FlushResult> flush) => await flush;
    }
}
