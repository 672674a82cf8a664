using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace ChatServer.Tests.Conformance;

/// <summary>The opening handshake (RFC 6455 §4), with requests written byte for byte over TCP.</summary>
public sealed class HandshakeConformanceTests : ConformanceFixture
{
    private const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    private static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

#pragma warning disable CA5350 // RFC 6455 §4.2.2 defines Sec-WebSocket-Accept with SHA-1; nothing here is security
    private static string AcceptOf(string key) => Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + Guid)));
#pragma warning restore CA5350

    private string Request(string headers, string method = "GET", string path = "/ws") =>
        $"{method} {path} HTTP/1.1\r\nHost: {Host.BaseUri.Authority}\r\n{headers}\r\n";

    [Test, CancelAfter(20_000)]
    public async Task The_101_carries_the_accept_computed_from_the_key(CancellationToken cancellationToken)
    {
        var key = NewKey();
        await using var connection = await HttpExchange.SendAsync(Host.BaseUri, Request(
            $"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"), cancellationToken);

        Assert.That(connection.StatusLine, Does.StartWith("HTTP/1.1 101 "), connection.Head);
        Assert.That(connection.Header("Sec-WebSocket-Accept"), Is.EqualTo(AcceptOf(key)), connection.Head);
        Assert.That(connection.Header("Upgrade")?.ToLowerInvariant(), Is.EqualTo("websocket"), connection.Head);
        Assert.That(connection.Header("Connection")?.ToLowerInvariant(), Is.EqualTo("upgrade"), connection.Head);
        Assert.That(connection.Header("Sec-WebSocket-Extensions"), Is.Null, "no extension was asked for");
        Assert.That(connection.Header("Sec-WebSocket-Protocol"), Is.Null, "no subprotocol was asked for");
        await connection.ExpectPongAsync(cancellationToken);
    }

    [Test, CancelAfter(20_000)]
    public async Task The_RFC_example_key_gets_the_RFC_example_accept(CancellationToken cancellationToken)
    {
        await using var connection = await HttpExchange.SendAsync(Host.BaseUri, Request(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"),
            cancellationToken);

        Assert.That(connection.StatusLine, Does.StartWith("HTTP/1.1 101 "), connection.Head);
        Assert.That(connection.Header("Sec-WebSocket-Accept"), Is.EqualTo("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), connection.Head);   // RFC 6455 §1.3
    }

    /// <summary>Header names and the tokens of Upgrade and Connection are case-insensitive; Connection may list several tokens.</summary>
    [TestCase("upgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: {0}\r\nsec-websocket-version: 13\r\n")]
    [TestCase("UPGRADE: WEBSOCKET\r\nCONNECTION: UPGRADE\r\nSEC-WEBSOCKET-KEY: {0}\r\nSEC-WEBSOCKET-VERSION: 13\r\n")]
    [TestCase("Upgrade: websocket\r\nConnection: Upgrade, keep-alive\r\nSec-WebSocket-Key: {0}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")]
    [CancelAfter(20_000)]
    public async Task Header_names_and_tokens_in_any_case_upgrade(string headers, CancellationToken cancellationToken)
    {
        var key = NewKey();
        await using var connection = await HttpExchange.SendAsync(Host.BaseUri, Request(string.Format(System.Globalization.CultureInfo.InvariantCulture, headers, key)),
            cancellationToken);

        Assert.That(connection.StatusLine, Does.StartWith("HTTP/1.1 101 "), connection.Head);
        Assert.That(connection.Header("Sec-WebSocket-Accept"), Is.EqualTo(AcceptOf(key)), connection.Head);
        Assert.That(connection.Header("Sec-WebSocket-Extensions"), Is.Null, "permessage-deflate is declined");
        await connection.ExpectPongAsync(cancellationToken);
    }

    /// <summary>Requests that are no (acceptable) WebSocket upgrade: today all get 400 from the endpoint, never 101.</summary>
    [TestCase("version 8", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {0}\r\nSec-WebSocket-Version: 8\r\n", "GET")]
    [TestCase("no version", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {0}\r\n", "GET")]
    [TestCase("no key", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", "GET")]
    [TestCase("a key of 8 bytes", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAA=\r\nSec-WebSocket-Version: 13\r\n", "GET")]
    [TestCase("no Upgrade header", "Connection: Upgrade\r\nSec-WebSocket-Key: {0}\r\nSec-WebSocket-Version: 13\r\n", "GET")]
    [TestCase("no Connection: Upgrade", "Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: {0}\r\nSec-WebSocket-Version: 13\r\n", "GET")]
    [TestCase("a plain GET", "", "GET")]
    [TestCase("a POST", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {0}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n", "POST")]
    [CancelAfter(20_000)]
    public async Task A_request_that_is_no_valid_upgrade_gets_400(string what, string headers, string method, CancellationToken cancellationToken)
    {
        await using var connection = await HttpExchange.SendAsync(Host.BaseUri,
            Request(string.Format(System.Globalization.CultureInfo.InvariantCulture, headers, NewKey()), method), cancellationToken);

        Assert.That(connection.StatusLine, Does.StartWith("HTTP/1.1 400 "), $"{what}: {connection.Head}");
        Assert.That(connection.Header("Sec-WebSocket-Accept"), Is.Null, connection.Head);
        Assert.That(connection.Header("Upgrade"), Is.Null, connection.Head);
    }

    /// <summary>One HTTP request on a fresh TCP connection, and the response head.</summary>
    private sealed class HttpExchange : IAsyncDisposable
    {
        private readonly TcpClient _tcp;
        private NetworkStream _stream = null!;   // once connected
        private readonly List<byte> _after = [];   // bytes past the head

        private HttpExchange(TcpClient tcp)
        {
            _tcp = tcp;
        }

        public string Head { get; private set; } = "";

        public string StatusLine => Head.Split("\r\n")[0];

        /// <summary>A header's value (several lines of one name joined with ", "), or null.</summary>
        public string? Header(string name)
        {
            var values = Head.Split("\r\n").Skip(1)
                .Select(line => line.Split(':', 2))
                .Where(parts => parts.Length == 2 && parts[0].Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
                .Select(parts => parts[1].Trim())
                .ToList();
            return values.Count == 0 ? null : string.Join(", ", values);
        }

        public static async Task<HttpExchange> SendAsync(Uri baseUri, string request, CancellationToken cancellationToken)
        {
            var tcp = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
            var exchange = new HttpExchange(tcp);
            try
            {
                await tcp.ConnectAsync(baseUri.Host, baseUri.Port, cancellationToken);
                exchange._stream = tcp.GetStream();
                await exchange._stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
                var received = new List<byte>();
                var buffer = new byte[4096];
                int end;
                while ((end = IndexOfHeadEnd(received)) < 0)
                {
                    var read = await exchange._stream.ReadAsync(buffer, cancellationToken);
                    if (read == 0)
                    {
                        throw new EndOfStreamException($"The server ended the connection before a response head: {Encoding.ASCII.GetString([.. received])}");
                    }

                    received.AddRange(buffer.AsSpan(0, read));
                }

                exchange.Head = Encoding.ASCII.GetString([.. received.Take(end)]);
                exchange._after.AddRange(received.Skip(end + 4));
                return exchange;
            }
            catch
            {
                await exchange.DisposeAsync();
                throw;
            }
        }

        /// <summary>After a 101: a masked Ping "ok" gets the server's Pong "ok", proving the socket speaks WebSocket.</summary>
        public async Task ExpectPongAsync(CancellationToken cancellationToken)
        {
            await _stream.WriteAsync(RawWebSocket.Frame(0x9, "ok"u8), cancellationToken);
            var buffer = new byte[64];
            while (_after.Count < 4)
            {
                var read = await _stream.ReadAsync(buffer, cancellationToken);
                if (read == 0)
                {
                    break;
                }

                _after.AddRange(buffer.AsSpan(0, read));
            }

            Assert.That(_after.Take(4).ToArray(), Is.EqualTo(new byte[] { 0x8A, 0x02, (byte)'o', (byte)'k' }));
        }

        public async ValueTask DisposeAsync()
        {
            if (_stream is not null)
            {
                await _stream.DisposeAsync();
            }

            _tcp.Dispose();
        }

        private static int IndexOfHeadEnd(List<byte> bytes)
        {
            for (var i = 0; i + 3 < bytes.Count; i++)
            {
                if (bytes[i] == '\r' && bytes[i + 1] == '\n' && bytes[i + 2] == '\r' && bytes[i + 3] == '\n')
                {
                    return i;
                }
            }

            return -1;
        }
    }
}
