using System.Net.WebSockets;
using ChatServer.Rooms;

namespace ChatServer.Connections;

/// <summary>
/// One client's WebSocket as the session and the rooms see it: frames go in through <see cref="IFrameSink"/> (never
/// blocking), and <see cref="RequestClose"/> is the one way the server closes it (the first reason wins; frames still
/// queued are dropped and the Close is the last frame sent). Two transports implement it: <see cref="RawChatConnection"/>
/// frames RFC 6455 itself on the TCP connection Kestrel accepted (every fresh upgrade to the chat path), and
/// <see cref="ManagedChatConnection"/> runs on ASP.NET Core's <see cref="WebSocket"/> for what reaches the endpoint
/// through the HTTP pipeline (an upgrade on a reused keep-alive connection, HTTP/2, or the fast path turned off).
/// </summary>
internal abstract class ChatConnection(string id) : IFrameSink
{
    /// <summary>1012, service restart: not in the enum, valid on the wire (RFC 6455 registry).</summary>
    public const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;

    /// <summary>4001, token expired (PROTOCOL.md, authentication): private use, valid on the wire.</summary>
    public const WebSocketCloseStatus TokenExpired = (WebSocketCloseStatus)4001;

    private protected int _closeStatus;          // 0 until the first RequestClose: the first reason wins
    private protected string? _closeDescription; // set with the first reason, when its caller gives one

    /// <summary>Unique across instances; notifications name their origin with it.</summary>
    public string Id { get; } = id;

    public WebSocketCloseStatus CloseStatus => (WebSocketCloseStatus)Volatile.Read(ref _closeStatus);

    /// <summary>Queues one text frame of this connection's own (an ack). Never blocks: a peer that does not read is closed.</summary>
    public abstract bool TryEnqueue(ReadOnlyMemory<byte> frame);

    /// <summary>Queues a frame every member of a room gets: the transport may use its wire form, built once per instance.</summary>
    public virtual bool TryEnqueue(SharedFrame frame) => TryEnqueue(frame.Payload);

    /// <summary>
    /// Asks the connection to close with <paramref name="status"/> (and <paramref name="description"/> as the Close's
    /// reason, when given); the first request wins.
    /// </summary>
    public abstract void RequestClose(WebSocketCloseStatus status, string? description = null);

    /// <summary>
    /// Runs the connection until it ends, each received message going to <paramref name="dispatcher"/> for
    /// <paramref name="session"/>. The session's close (its leave) starts as soon as either side decides to close and
    /// runs beside the close handshake, so room membership (and the leave notification) ends at once.
    /// </summary>
    public abstract Task RunAsync(ChatSession session, FrameDispatcher dispatcher, CancellationToken requestAborted);

    /// <summary>Records the first close reason; true for the first caller.</summary>
    private protected bool TrySetCloseStatus(WebSocketCloseStatus status, string? description)
    {
        if (Interlocked.CompareExchange(ref _closeStatus, (int)status, 0) != 0)
        {
            return false;
        }

        Volatile.Write(ref _closeDescription, description);
        return true;
    }

    private protected static string Describe(WebSocketCloseStatus status) => status switch
    {
        WebSocketCloseStatus.PolicyViolation => "Outgoing queue full: the client is not reading.",
        WebSocketCloseStatus.MessageTooBig => "Frame too big.",
        ServiceRestart => "Server restarting; reconnect.",
        TokenExpired => "Token expired.",
        _ => "",
    };
}
