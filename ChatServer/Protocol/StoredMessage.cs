using System.Text.Json;

namespace ChatServer.Protocol;

/// <summary>
/// The fields of a stored <c>message</c> object, read back from its JSON: what the history database indexes and what a
/// delete checks. <see cref="Text"/> is <c>null</c> for a tombstone (<see cref="Deleted"/>).
/// </summary>
internal sealed record StoredMessage(string Room, string User, string Ts, long Seq, string Epoch, string? Text, bool Deleted)
{
    /// <summary>Reads a stored message; <c>null</c> when the JSON is not one (it never is, but it came over the wire).</summary>
    public static StoredMessage? TryRead(ReadOnlySpan<byte> json)
    {
        string? room = null, user = null, ts = null, epoch = null, text = null;
        long? seq = null;
        var deleted = false;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.ValueSpan;
                if (!reader.Read())
                {
                    return null;
                }

                if (name.SequenceEqual("room"u8)) room = reader.GetString();
                else if (name.SequenceEqual("user"u8)) user = reader.GetString();
                else if (name.SequenceEqual("ts"u8)) ts = reader.GetString();
                else if (name.SequenceEqual("epoch"u8)) epoch = reader.GetString();
                else if (name.SequenceEqual("text"u8)) text = reader.GetString();
                else if (name.SequenceEqual("seq"u8)) seq = reader.GetInt64();
                else if (name.SequenceEqual("deleted"u8)) deleted = reader.TokenType == JsonTokenType.True;
                else reader.Skip();
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }

        return room is null || user is null || ts is null || epoch is null || seq is null
            ? null
            : new StoredMessage(room, user, ts, seq.Value, epoch, deleted ? null : text, deleted);
    }

    /// <summary>When it was stored, as a UTC <see cref="DateTime"/>.</summary>
    public DateTime StoredAt =>
        MessageEncoding.TryParseTimestamp(System.Text.Encoding.ASCII.GetBytes(Ts), out var utc) ? utc : DateTime.UnixEpoch;
}
