using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace ChatServer.Protocol;

/// <summary>
/// Builds <c>message</c> objects. The instance writes everything but <c>seq</c> and <c>epoch</c>, which exist only once
/// the store has numbered the message: it sends an object left open (<see cref="WritePrefix"/>) and the log closes it
/// (<c>RoomEntry</c> owns that layout, in C# and in Lua). So each message is serialized once, and every
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

    private static readonly byte[] s_tsField = ",\"ts\":\""u8.ToArray();

    /// <summary>Reads back the <c>ts</c> that <see cref="WritePrefix"/> wrote into a stored message's JSON.</summary>
    public static bool TryReadTimestamp(ReadOnlySpan<byte> messageJson, out DateTime storedAt)
    {
        storedAt = default;

        // ts is written after text, and text is JSON-escaped, so the last ',"ts":"' is the real field.
        var at = messageJson.LastIndexOf(s_tsField);
        const int length = 24;   // the length of TimestampFormat's output
        if (at < 0 || messageJson.Length < at + s_tsField.Length + length)
        {
            return false;
        }

        Span<char> text = stackalloc char[length];
        return System.Text.Encoding.ASCII.GetChars(messageJson.Slice(at + s_tsField.Length, length), text) == length
            && DateTime.TryParseExact(text, TimestampFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out storedAt);
    }
}
