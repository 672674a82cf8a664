using System.Buffers;
using System.Buffers.Text;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ChatServer.Hosting;

/// <summary>A RESP2 command, built argument by argument: <c>*n</c>, then <c>$len arg</c> for each.</summary>
internal sealed class RespCommand
{
    private readonly ArrayBufferWriter<byte> _arguments = new(256);
    private int _count;

    public RespCommand(string name) => Add(name);

    public RespCommand Add(string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        Header((byte)'$', length);
        _arguments.Advance(Encoding.UTF8.GetBytes(value, _arguments.GetSpan(length)));
        return Line();
    }

    public RespCommand Add(ReadOnlySpan<byte> value)
    {
        Header((byte)'$', value.Length);
        _arguments.Write(value);
        return Line();
    }

    public RespCommand Add(long value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out var written);
        return Add(digits[..written]);
    }

    public RespCommand AddRange(IEnumerable<string> values)
    {
        foreach (var value in values)
        {
            Add(value);
        }

        return this;
    }

    /// <summary>The whole command: the array header, then the arguments.</summary>
    public byte[] ToArray()
    {
        Span<byte> header = stackalloc byte[16];
        header[0] = (byte)'*';
        Utf8Formatter.TryFormat(_count, header[1..], out var written);
        header[1 + written] = (byte)'\r';
        header[2 + written] = (byte)'\n';
        var headerLength = 3 + written;
        var bytes = new byte[headerLength + _arguments.WrittenCount];
        header[..headerLength].CopyTo(bytes);
        _arguments.WrittenSpan.CopyTo(bytes.AsSpan(headerLength));
        return bytes;
    }

    private void Header(byte type, int number)
    {
        _count++;
        var span = _arguments.GetSpan(16);
        span[0] = type;
        Utf8Formatter.TryFormat(number, span[1..], out var written);
        span[1 + written] = (byte)'\r';
        span[2 + written] = (byte)'\n';
        _arguments.Advance(3 + written);
    }

    private RespCommand Line()
    {
        _arguments.Write("\r\n"u8);
        return this;
    }
}

/// <summary>
/// What the server's own Redis connections share: a blocking TCP socket, connected within a timeout, and the handshake
/// (<c>AUTH</c>, <c>CLIENT SETNAME</c>, …) whose replies are read before anything else is sent.
/// </summary>
internal static class RespSocket
{
    /// <summary>Connects to the first address of <paramref name="endPoint"/> that answers; each try bounded by <paramref name="timeout"/>.</summary>
    public static Socket Connect(EndPoint endPoint, TimeSpan timeout)
    {
        var addresses = endPoint switch
        {
            IPEndPoint ip => [ip],
            DnsEndPoint dns => Dns.GetHostAddresses(dns.Host).Select(a => new IPEndPoint(a, dns.Port)).ToArray(),
            _ => throw new InvalidDataException($"Cannot connect to {endPoint}."),
        };

        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                // A blocking connect (an async one would make every later call on the socket go through the event loop).
                using (new Timer(static s => Close((Socket)s!), socket, timeout, Timeout.InfiniteTimeSpan))
                {
                    socket.Connect(address);
                }

                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 15);
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 5);
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
                socket.SendTimeout = (int)timeout.TotalMilliseconds;
                return socket;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                last = ex as SocketException ?? new SocketException((int)SocketError.TimedOut);
                Close(socket);
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>
    /// Sends <paramref name="commands"/> and reads one reply for each, within <paramref name="timeout"/>. An error reply
    /// throws <see cref="InvalidDataException"/> naming the command's position.
    /// </summary>
    public static RespValue[] Exchange(Socket socket, IReadOnlyList<RespCommand> commands, TimeSpan timeout)
    {
        SendAll(socket, commands.SelectMany(c => c.ToArray()).ToArray());
        socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        var replies = new List<RespValue>(commands.Count);
        var buffer = new byte[4096];
        var length = 0;
        while (replies.Count < commands.Count)
        {
            if (length == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }

            var received = socket.Receive(buffer, length, buffer.Length - length, SocketFlags.None);
            if (received == 0)
            {
                throw new IOException("Redis closed the connection during the handshake.");
            }

            length += received;
            var start = 0;
            while (replies.Count < commands.Count && RespValue.TryRead(buffer.AsSpan(start, length - start), out var reply, out var consumed))
            {
                if (reply!.IsError)
                {
                    throw new InvalidDataException($"Redis refused the connection's setup (command {replies.Count + 1}): {reply.Text}");
                }

                replies.Add(reply);
                start += consumed;
            }

            buffer.AsSpan(start, length - start).CopyTo(buffer);
            length -= start;
        }

        socket.ReceiveTimeout = 0;
        return [.. replies];
    }

    /// <summary>The setup every connection of ours starts with: <c>AUTH</c> when a password is configured, then its name.</summary>
    public static List<RespCommand> Setup(string? user, string? password, string clientName)
    {
        var commands = new List<RespCommand>(3);
        if (password is not null)
        {
            commands.Add(user is null ? new RespCommand("AUTH").Add(password) : new RespCommand("AUTH").Add(user).Add(password));
        }

        commands.Add(new RespCommand("CLIENT").Add("SETNAME").Add(clientName));
        return commands;
    }

    public static void SendAll(Socket socket, ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            bytes = bytes[socket.Send(bytes)..];
        }
    }

    public static void Shutdown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // already closed
        }
    }

    public static void Close(Socket? socket)
    {
        if (socket is not null)
        {
            Shutdown(socket);
            socket.Dispose();
        }
    }
}
