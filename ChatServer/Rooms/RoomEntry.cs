using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace ChatServer.Rooms;

internal enum RoomEntryKind
{
    /// <summary>A stored message (<c>m</c>).</summary>
    Message,

    /// <summary>A join or leave notification (<c>n</c>), never stored.</summary>
    Notification,
}

/// <summary>
/// The one owner of an entry's byte layout: what travels on a room's channel and sits in its log. A stored message is
/// <c>m &lt;seq&gt; &lt;epoch&gt; &lt;message json&gt;</c>; a notification (published, never stored) is
/// <c>n &lt;origin connection id&gt; &lt;notification json&gt;</c>. The header lets an instance order, de-duplicate and
/// route an entry without parsing its JSON, whose bytes go to clients unchanged. The message JSON arrives open (see
/// <c>MessageEncoding.WritePrefix</c>): the log closes it with <c>seq</c> and <c>epoch</c>, in C#
/// (<see cref="EncodeMessage"/>) or in Lua (<see cref="LuaEncodeMessage"/>), which must agree byte for byte.
/// </summary>
internal readonly record struct RoomEntry(RoomEntryKind Kind, long Seq, string Epoch, string Origin, ReadOnlyMemory<byte> Json)
{
    /// <summary>
    /// The Lua expression that builds a stored message from the locals <c>seq</c> and <c>epoch</c> and the open message
    /// JSON in <c>ARGV[1]</c>: the twin of <see cref="EncodeMessage"/>. Lua numbers print as integers up to 2^53.
    /// </summary>
    public const string LuaEncodeMessage =
        """'m ' .. seq .. ' ' .. epoch .. ' ' .. ARGV[1] .. ',"seq":' .. seq .. ',"epoch":"' .. epoch .. '"}'""";

    /// <summary>A stored message: the header, then <paramref name="openJson"/> closed with <c>seq</c> and <c>epoch</c>.</summary>
    public static byte[] EncodeMessage(ReadOnlySpan<byte> openJson, long seq, string epoch)
    {
        var number = seq.ToString(CultureInfo.InvariantCulture);
        return [.. Encoding.ASCII.GetBytes($"m {number} {epoch} "), .. openJson,
            .. Encoding.ASCII.GetBytes($",\"seq\":{number},\"epoch\":\"{epoch}\"}}")];
    }

    /// <summary>A stored message from its complete JSON (a tombstone, PROTOCOL.md "Deleting messages"): the same header.</summary>
    public static byte[] EncodeStored(long seq, string epoch, ReadOnlySpan<byte> json) =>
        [.. Encoding.ASCII.GetBytes($"m {seq.ToString(CultureInfo.InvariantCulture)} {epoch} "), .. json];

    /// <summary>Origin of a notification meant for every member, none excluded (no connection has this id).</summary>
    public const string EveryMember = "-";

    public static byte[] EncodeNotification(string origin, ReadOnlySpan<byte> json) =>
        [.. Encoding.UTF8.GetBytes($"n {origin} "), .. json];

    public static bool TryParse(ReadOnlyMemory<byte> entry, out RoomEntry result)
    {
        result = default;
        var span = entry.Span;
        if (span.Length < 4 || span[1] != (byte)' ')
        {
            return false;
        }

        switch (span[0])
        {
            case (byte)'m':
                {
                    var rest = span[2..];
                    var space = rest.IndexOf((byte)' ');
                    if (space <= 0 || !Utf8Parser.TryParse(rest[..space], out long seq, out var consumed) || consumed != space)
                    {
                        return false;
                    }

                    var afterSeq = 2 + space + 1;
                    var epochLength = span[afterSeq..].IndexOf((byte)' ');
                    if (epochLength <= 0)
                    {
                        return false;
                    }

                    var epoch = Encoding.ASCII.GetString(span.Slice(afterSeq, epochLength));
                    result = new(RoomEntryKind.Message, seq, epoch, "", entry[(afterSeq + epochLength + 1)..]);
                    return true;
                }

            case (byte)'n':
                {
                    var originLength = span[2..].IndexOf((byte)' ');
                    if (originLength <= 0)
                    {
                        return false;
                    }

                    var origin = Encoding.UTF8.GetString(span.Slice(2, originLength));
                    result = new(RoomEntryKind.Notification, 0, "", origin, entry[(2 + originLength + 1)..]);
                    return true;
                }

            default:
                return false;
        }
    }
}
