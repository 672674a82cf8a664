using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using ChatServer.Auth;
using ChatServer.Hosting;
using ChatServer.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>
/// Kestrel connection middleware (on every endpoint, before HTTP): when a fresh TCP connection's first request is a
/// well-formed WebSocket upgrade to the chat path that the endpoint would accept, it answers 101 itself and runs a
/// <see cref="RawChatConnection"/> on the bare transport, so no HTTP/1.1 connection, request, response or pipe stream
/// lives under the socket (issue 11: about two thirds of an idle socket's memory, and the writes' hop through
/// Kestrel's output pipe). Everything else (other paths, plain requests, TLS, HTTP/2, a malformed, refused or
/// incomplete upgrade, a full or stopping instance) goes on to Kestrel untouched: the request's bytes are only looked
/// at, never consumed, so the HTTP pipeline sees them from the first byte and answers as before (400, 401, 403, 426,
/// 431, 503). The checks here are the endpoint's own (origin, token, capacity), so the outcome is the same either way.
/// </summary>
internal sealed class DirectUpgrade(ConnectionDelegate next, IServiceProvider services, string path)
{
    /// <summary>The largest request head looked at; a longer one goes to Kestrel (whose limit is 32 KiB).</summary>
    private const int MaxHead = 8 * 1024;

    /// <summary>How long a connection may take to send its first request head before it is handed to Kestrel (which times it out).</summary>
    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(10);

    private static ReadOnlySpan<byte> HeadEnd => "\r\n\r\n"u8;

    private readonly byte[] _prefix = Encoding.ASCII.GetBytes("GET " + path);

    public async Task OnConnectedAsync(ConnectionContext connection)
    {
        (RawChatConnection Connection, AuthIdentity? Identity)? attempt;
        try
        {
            attempt = await TryUpgradeAsync(connection);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException or
            ConnectionAbortedException or OperationCanceledException)
        {
            return;   // the peer went away during its upgrade: nothing to answer
        }

        if (attempt is not { } upgraded)
        {
            await next(connection);
            return;
        }

        var factory = services.GetRequiredService<ChatConnectionFactory>();
        try
        {
            await factory.RunAsync(upgraded.Connection, upgraded.Identity, connection.ConnectionClosed);
        }
        finally
        {
            factory.Release();
        }
    }

    /// <summary>The upgraded connection (101 written, slot reserved), or null to hand the connection to Kestrel.</summary>
    private async Task<(RawChatConnection Connection, AuthIdentity? Identity)?> TryUpgradeAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        ReadResult result;
        using (var timeout = new CancellationTokenSource(HeadTimeout))
        {
            while (true)
            {
                try
                {
                    result = await input.ReadAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    return null;
                }

                var buffer = result.Buffer;
                var look = Classify(buffer);
                if (look == Look.Head || look == Look.NotOurs || result.IsCompleted || result.IsCanceled || buffer.Length > MaxHead)
                {
                    if (look == Look.Head)
                    {
                        break;
                    }

                    input.AdvanceTo(buffer.Start);   // nothing consumed or examined: Kestrel reads it all again at once
                    return null;
                }

                input.AdvanceTo(buffer.Start, buffer.End);   // wait for more of the head
            }
        }

        var head = result.Buffer;
        var length = HeadLength(head);
        var request = UpgradeRequest.Parse(head.Slice(0, length));
        var accepted = request is not null ? await AcceptAsync(connection, request) : null;
        if (accepted is null)
        {
            input.AdvanceTo(head.Start);
            return null;
        }

        input.AdvanceTo(head.GetPosition(length));   // the head is ours; frames follow
        return accepted;
    }

    private async Task<(RawChatConnection, AuthIdentity?)?> AcceptAsync(ConnectionContext connection, UpgradeRequest request)
    {
        if (!services.GetRequiredService<IOptions<ChatOptions>>().Value.DirectWebSockets)
        {
            return null;
        }

        // The endpoint's own checks; any refusal is the endpoint's to answer (and log), so it is handed on unlogged.
        var (admission, identity) = await services.GetRequiredService<UpgradeGate>().AdmitAsync(request.Header, "http", log: false,
            connection.ConnectionClosed);
        if (admission != Admission.Admitted)
        {
            return null;
        }

        var factory = services.GetRequiredService<ChatConnectionFactory>();
        try
        {
            var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
            var output = WireOutput.For(socket, connection.Transport.Output);
            var response = Encoding.ASCII.GetBytes(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: "
                + WsFrame.AcceptKey(request.Key) + "\r\n\r\n");
            await output.WriteAsync(response);
            return (factory.CreateRaw(connection, output), identity);
        }
        catch
        {
            factory.Release();
            throw;
        }
    }

    private enum Look { More, Head, NotOurs }

    /// <summary>Whether the buffered bytes can still be an upgrade to our path (<c>GET /ws</c> then a space or <c>?</c>), and whether the head is complete.</summary>
    private Look Classify(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> start = stackalloc byte[64];
        var have = (int)Math.Min(buffer.Length, Math.Min(start.Length, _prefix.Length + 1));
        buffer.Slice(0, have).CopyTo(start);
        var compared = Math.Min(have, _prefix.Length);
        if (!start[..compared].SequenceEqual(_prefix.AsSpan(0, compared)))
        {
            return Look.NotOurs;
        }

        if (have <= _prefix.Length)
        {
            return Look.More;
        }

        if (start[_prefix.Length] is not ((byte)' ' or (byte)'?'))
        {
            return Look.NotOurs;
        }

        return HeadLength(buffer) > 0 ? Look.Head : Look.More;
    }

    /// <summary>The length of the head up to and including its blank line, or 0 while it is incomplete.</summary>
    private static int HeadLength(in ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        return reader.TryReadTo(out ReadOnlySequence<byte> _, HeadEnd, advancePastDelimiter: true) ? (int)reader.Consumed : 0;
    }
}

/// <summary>
/// A WebSocket upgrade request as read off the wire: only a plain, unambiguous one (RFC 6455 §4.2.1 over HTTP/1.1) is
/// parsed; anything unusual (another version, a body, a folded or repeated header that matters, no Host) is null, and
/// the request goes to Kestrel instead.
/// </summary>
internal sealed class UpgradeRequest
{
    private readonly Dictionary<string, string> _headers;

    private UpgradeRequest(Dictionary<string, string> headers, string key) => (_headers, Key) = (headers, key);

    public string Key { get; }

    public string? Header(string name) => _headers.GetValueOrDefault(name);

    public static UpgradeRequest? Parse(in ReadOnlySequence<byte> head)
    {
        var text = Encoding.Latin1.GetString(head);
        var lines = text.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine is not [_, _, "HTTP/1.1"])
        {
            return null;
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.AsSpan(1))
        {
            if (line.Length == 0)
            {
                continue;
            }

            var colon = line.IndexOf(':');
            if (colon <= 0 || !IsToken(line.AsSpan(0, colon)))
            {
                return null;   // folded, or not a header name (Kestrel answers 400)
            }

            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(' ', '\t');
            if (headers.TryGetValue(name, out var earlier))
            {
                if (!(name.Equals("Connection", StringComparison.OrdinalIgnoreCase) || name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase)))
                {
                    return null;   // a repeated header: let Kestrel and the endpoint judge it
                }

                value = earlier + ", " + value;
            }

            headers[name] = value;
        }

        if (!headers.ContainsKey("Host") || headers.ContainsKey("Content-Length") || headers.ContainsKey("Transfer-Encoding")
            || !HasToken(headers.GetValueOrDefault("Upgrade"), "websocket") || !HasToken(headers.GetValueOrDefault("Connection"), "upgrade")
            || headers.GetValueOrDefault("Sec-WebSocket-Version") != "13"
            || headers.GetValueOrDefault("Sec-WebSocket-Key") is not { } key || !WsFrame.IsValidClientKey(key))
        {
            return null;
        }

        return new UpgradeRequest(headers, key.Trim());
    }

    /// <summary>An HTTP token (RFC 9110 §5.6.2): what a header name is made of.</summary>
    private static bool IsToken(ReadOnlySpan<char> name)
    {
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c)))
            {
                return false;
            }
        }

        return true;
    }

    private static bool HasToken(string? list, string token)
    {
        foreach (var part in (list ?? "").Split(','))
        {
            if (part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
