using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace ChatServer.Protocol;

/// <summary>
/// Builds <c>message</c> objects. The instance writes everything but <c>seq</c> and <c>epoch</c>, which exist only once
/// the store has numbered the message: it sends an object left open (<see cref="WritePrefix"/>) and the store closes it
/// with <see cref="Complete"/> (or the same concatenation in Lua). So each message is serialized once, and every
/// instance forwards the stored bytes unchanged.
/// </summary>
internal static class MessageEncoding
{
    /// <summary>PROTOCOL.md: ISO 8601 UTC with exactly three fractional digits and <c>Z</c>.</summary>
    public const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public static byte[] WritePrefix(string room, string user, string text, DateTimeOffset storedAt)
    {
        var buffer = new ArrayBufferWriter<byte>(128 + text.Length);
        using (var writer = new Utf8JsonWriter(buffer, ChatJsonContext.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, FrameTypes.Message);
            writer.WriteString("room"u8, room);
            writer.WriteString("user"u8, user);
            writer.WriteString("text"u8, text);
            writer.WriteString("ts"u8, storedAt.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture));
            writer.Flush();   // deliberately open: Complete() appends seq and epoch and the closing brace
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The in-process twin of the Lua concatenation in <c>RedisRoomBus</c>.</summary>
    public static byte[] Complete(ReadOnlySpan<byte> prefix, long seq, string epoch) =>
        [.. prefix, .. System.Text.Encoding.UTF8.GetBytes($",\"seq\":{seq.ToString(CultureInfo.InvariantCulture)},\"epoch\":\"{epoch}\"}}")];
}
