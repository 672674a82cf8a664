using ChatServer.WebSockets;

namespace ChatServer.Rooms;

/// <summary>
/// A frame every member of a room gets (a stored message, a notification, a gap): its JSON, and its WebSocket wire
/// form (header and payload in one array), built the first time a member needs it and then written as is to every
/// other member's socket. Server frames are unmasked, so the bytes are the same for all of them: framed once per
/// instance, not once per delivery. Built by one feed at a time; a race would only build the same bytes twice.
/// </summary>
internal sealed class SharedFrame(ReadOnlyMemory<byte> payload)
{
    private byte[]? _wire;

    public ReadOnlyMemory<byte> Payload { get; } = payload;

    public byte[] Wire => _wire ??= WsFrame.Text(Payload.Span);
}
