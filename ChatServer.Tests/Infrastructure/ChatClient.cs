using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace ChatServer.Tests;

/// <summary>
/// A real <see cref="ClientWebSocket"/> with a background reader. Tests wait for frames (never sleep) with the test's
/// token; <see cref="NextAsync"/> returns whatever comes next, so a test can prove a frame did not arrive by sending a
/// sentinel after it and seeing the sentinel first.
/// </summary>
public sealed class ChatClient : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly Channel<Frame> _frames = Channel.CreateUnbounded<Frame>();
    private readonly Queue<Frame> _stash = new();   // frames RequestAsync read past while waiting for its ack
    private readonly Task _reader;
    private int _nextId;

    private readonly TaskCompletionSource _readingAllowed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly bool _presence;

    private ChatClient(ClientWebSocket socket, bool read, bool presence = false)
    {
        _socket = socket;
        _presence = presence;
        if (read)
        {
            _readingAllowed.SetResult();
        }

        _reader = ReadLoopAsync();
    }

    /// <summary>
    /// For a client that does not read (until <see cref="StartReading"/>): its frames pile up on the server.
    /// Its TCP receive buffer is pinned small (which turns off the kernel's autotuning, up to 32 MiB here), so the
    /// server's side fills after kilobytes rather than tens of megabytes.
    /// </summary>
    public static async Task<ChatClient> ConnectWithoutReadingAsync(Uri uri, CancellationToken cancellationToken)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, token) =>
            {
                var tcp = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp)
                {
                    ReceiveBufferSize = 4096,
                    NoDelay = true,
                };
                await tcp.ConnectAsync(context.DnsEndPoint, token);
                return new System.Net.Sockets.NetworkStream(tcp, ownsSocket: true);
            },
        };
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(uri, new HttpMessageInvoker(handler), cancellationToken);
        return new ChatClient(socket, read: false);
    }

    public void StartReading() => _readingAllowed.TrySetResult();

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    /// <summary>The reason of the server's Close frame, once it arrived.</summary>
    public string? CloseDescription { get; private set; }

    public WebSocketState State => _socket.State;

    /// <summary>
    /// Connects. <paramref name="presence"/>: whether to see <c>presence</c> frames (a protocol extension). Off by
    /// default: the v1 tests play a v1 client, which ignores frame types it does not know (servers may add them).
    /// </summary>
    public static async Task<ChatClient> ConnectAsync(Uri uri, CancellationToken cancellationToken, string? origin = null, bool presence = false)
    {
        var socket = new ClientWebSocket();
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }

        await socket.ConnectAsync(uri, cancellationToken);
        return new ChatClient(socket, read: true, presence);
    }

    /// <summary>Connects with extra upgrade-request headers (an <c>Authorization: Bearer</c> token, say).</summary>
    public static async Task<ChatClient> ConnectWithHeadersAsync(Uri uri, IReadOnlyDictionary<string, string> headers,
        CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        foreach (var (name, value) in headers)
        {
            socket.Options.SetRequestHeader(name, value);
        }

        await socket.ConnectAsync(uri, cancellationToken);
        return new ChatClient(socket, read: true);
    }

    /// <summary>Connects and signs in; returns once the ack (ok) arrived.</summary>
    public static async Task<ChatClient> SignInAsync(Uri uri, string user, string room, CancellationToken cancellationToken, bool presence = false)
    {
        var client = await ConnectAsync(uri, cancellationToken, presence: presence);
        var ack = await client.RequestAsync(new { type = "signin", user, room }, cancellationToken);
        Assert.That(ack.Ok, Is.True, ack.Raw);
        return client;
    }

    /// <summary>
    /// Sends a frame with a fresh numeric id and returns its ack. Frames that arrive before the ack (a message may come
    /// before its own ack) are kept, in order, for the next <see cref="NextAsync"/>.
    /// </summary>
    public async Task<Frame> RequestAsync(object frame, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextId) + 1_000_000;
        var element = JsonSerializer.SerializeToElement(frame);
        var withId = new Dictionary<string, object?> { ["id"] = id };
        foreach (var property in element.EnumerateObject())
        {
            withId[property.Name] = property.Value;
        }

        await SendAsync(withId, cancellationToken);
        var skipped = new List<Frame>();
        while (true)
        {
            var next = await NextAsync(cancellationToken);
            if (next.IsAck(id))
            {
                foreach (var rest in _stash)
                {
                    skipped.Add(rest);
                }

                _stash.Clear();
                foreach (var kept in skipped)
                {
                    _stash.Enqueue(kept);
                }

                return next;
            }

            skipped.Add(next);
        }
    }

    public Task SendAsync(object frame, CancellationToken cancellationToken) =>
        SendRawAsync(JsonSerializer.Serialize(frame), cancellationToken);

    public Task SendRawAsync(string text, CancellationToken cancellationToken) =>
        SendBytesAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, cancellationToken);

    public async Task SendBytesAsync(byte[] bytes, WebSocketMessageType type, CancellationToken cancellationToken) =>
        await _socket.SendAsync(bytes, type, endOfMessage: true, cancellationToken);

    /// <summary>
    /// Sends the message <c>sentinel</c> and returns the next frame that is not an ack. If nothing else was on its way to
    /// this client, that is the sentinel itself: how a test proves a frame did not arrive.
    /// </summary>
    public async Task<Frame> SendSentinelAndReadNextAsync(CancellationToken cancellationToken)
    {
        await SendAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken);
        return await ExpectAsync(f => f.Type != "ack", cancellationToken);
    }

    /// <summary>One piece of a text message split over several WebSocket frames.</summary>
    public async Task SendFragmentAsync(ReadOnlyMemory<byte> bytes, bool endOfMessage, CancellationToken cancellationToken) =>
        await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage, cancellationToken);

    /// <summary>The next frame, whatever it is.</summary>
    public async Task<Frame> NextAsync(CancellationToken cancellationToken)
    {
        if (_stash.TryDequeue(out var stashed))
        {
            return stashed;
        }

        if (await _frames.Reader.WaitToReadAsync(cancellationToken) && _frames.Reader.TryRead(out var frame))
        {
            return frame;
        }

        throw new InvalidOperationException($"The connection closed ({CloseStatus}) while a frame was expected.");
    }

    /// <summary>Reads until a frame matches; frames before it are skipped.</summary>
    public async Task<Frame> ExpectAsync(Func<Frame, bool> predicate, CancellationToken cancellationToken)
    {
        while (true)
        {
            var frame = await NextAsync(cancellationToken);
            if (predicate(frame))
            {
                return frame;
            }
        }
    }

    /// <summary>Waits until the server closes the connection; returns its close status.</summary>
    public async Task<WebSocketCloseStatus?> WaitForCloseAsync(CancellationToken cancellationToken)
    {
        await _reader.WaitAsync(cancellationToken);
        return CloseStatus;
    }

    public async Task CloseAsync(CancellationToken cancellationToken)
    {
        if (_socket.State == WebSocketState.Open)
        {
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cancellationToken);
        }

        await _reader.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        StartReading();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await CloseAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException)
        {
            _socket.Abort();
        }

        _socket.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        await _readingAllowed.Task;
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseStatus = result.CloseStatus;
                    CloseDescription = result.CloseStatusDescription;
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                    }

                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    var frame = new Frame(Encoding.UTF8.GetString(message.ToArray()));
                    if (_presence || frame.Type != "presence")
                    {
                        _frames.Writer.TryWrite(frame);
                    }

                    message.SetLength(0);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            // aborted
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }
}
