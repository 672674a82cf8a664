using System.Buffers;
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

    /// <summary>The length of <see cref="TimestampFormat"/>'s output.</summary>
    public const int TimestampLength = 24;

    /// <summary><paramref name="key"/>: the client's idempotency key (protocol 1.2), written after <c>ts</c>, or none.</summary>
    public static byte[] WritePrefix(string room, string user, string text, DateTimeOffset storedAt, string? key = null)
    {
        var buffer = new ArrayBufferWriter<byte>(128 + text.Length);
        Span<byte> ts = stackalloc byte[TimestampLength];
        FormatTimestamp(storedAt.UtcDateTime, ts);
        using (var writer = new Utf8JsonWriter(buffer, ChatJsonContext.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, FrameTypes.Message);
            writer.WriteString("room"u8, room);
            writer.WriteString("user"u8, user);
            writer.WriteString("text"u8, text);
            writer.WriteString("ts"u8, ts);
            if (key is not null)
            {
                writer.WriteString("key"u8, key);   // after ts: only A-Z a-z 0-9 _ -, so TryReadTimestamp still finds the real ts
            }

            writer.Flush();   // deliberately open: Complete() appends seq and epoch and the closing brace
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// A deleted message's tombstone (PROTOCOL.md "Deleting messages"): who and when stay, its <c>seq</c> stays taken,
    /// its text and key are gone. Complete, unlike <see cref="WritePrefix"/>: the number is known.
    /// </summary>
    public static byte[] WriteTombstone(StoredMessage message)
    {
        var buffer = new ArrayBufferWriter<byte>(160);
        using (var writer = new Utf8JsonWriter(buffer, ChatJsonContext.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, FrameTypes.Message);
            writer.WriteString("room"u8, message.Room);
            writer.WriteString("user"u8, message.User);
            writer.WriteString("ts"u8, message.Ts);
            writer.WriteNumber("seq"u8, message.Seq);
            writer.WriteString("epoch"u8, message.Epoch);
            writer.WriteBoolean("deleted"u8, true);
            writer.WriteEndObject();
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
        return at >= 0
            && messageJson.Length >= at + s_tsField.Length + TimestampLength
            && TryParseTimestamp(messageJson.Slice(at + s_tsField.Length, TimestampLength), out storedAt);
    }

    /// <summary>
    /// <paramref name="utc"/> as <see cref="TimestampFormat"/> (what <c>ToString</c> with it and the invariant culture
    /// gives), written digit by digit: it runs once per message sent, and the general formatter is costly there.
    /// </summary>
    public static void FormatTimestamp(DateTime utc, Span<byte> into)
    {
        if (into.Length < TimestampLength)
        {
            throw new ArgumentException($"A timestamp takes {TimestampLength} bytes.", nameof(into));
        }

        Digits(into, 0, utc.Year, 4);
        into[4] = (byte)'-';
        Digits(into, 5, utc.Month, 2);
        into[7] = (byte)'-';
        Digits(into, 8, utc.Day, 2);
        into[10] = (byte)'T';
        Digits(into, 11, utc.Hour, 2);
        into[13] = (byte)':';
        Digits(into, 14, utc.Minute, 2);
        into[16] = (byte)':';
        Digits(into, 17, utc.Second, 2);
        into[19] = (byte)'.';
        Digits(into, 20, utc.Millisecond, 3);
        into[23] = (byte)'Z';
    }

    /// <summary>
    /// The UTC time in <paramref name="text"/> when it is exactly <see cref="TimestampFormat"/>'s shape with a valid date
    /// and time; once per message on every instance (its latency metric), so parsed here instead of by
    /// <c>DateTime.TryParseExact</c>.
    /// </summary>
    public static bool TryParseTimestamp(ReadOnlySpan<byte> text, out DateTime utc)
    {
        utc = default;
        if (text.Length != TimestampLength
            || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != '.' || text[23] != 'Z'
            || !TryDigits(text, 0, 4, out var year) || !TryDigits(text, 5, 2, out var month) || !TryDigits(text, 8, 2, out var day)
            || !TryDigits(text, 11, 2, out var hour) || !TryDigits(text, 14, 2, out var minute) || !TryDigits(text, 17, 2, out var second)
            || !TryDigits(text, 20, 3, out var millisecond)
            || year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        utc = new DateTime(year, month, day, hour, minute, second, millisecond, DateTimeKind.Utc);
        return true;
    }

    private static void Digits(Span<byte> into, int at, int value, int count)
    {
        for (var i = at + count - 1; i >= at; i--)
        {
            into[i] = (byte)('0' + value % 10);
            value /= 10;
        }
    }

    private static bool TryDigits(ReadOnlySpan<byte> text, int at, int count, out int value)
    {
        value = 0;
        foreach (var c in text.Slice(at, count))
        {
            if (c is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            value = value * 10 + (c - '0');
        }

        return true;
    }
}
