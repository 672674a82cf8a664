using System.Text;

namespace ChatServer.Hosting;

/// <summary>
/// One reply, read whole: a simple string, an error, an integer, a bulk string (null: <c>$-1</c>) or an array; RESP3's
/// types map onto these (null, boolean as 0/1, double and big number as text, verbatim string, blob error, set, and a
/// map as an array of keys and values).
/// </summary>
internal sealed class RespValue
{
    private const int MaxDepth = 8;
    private const int MaxElements = 1 << 20;

    private RespValue(char type, long integer = 0, byte[]? bytes = null, RespValue[]? items = null) =>
        (Type, Integer, Bytes, Items) = (type, integer, bytes, items);

    /// <summary>The RESP type byte: <c>+</c>, <c>-</c>, <c>:</c>, <c>$</c> or <c>*</c>.</summary>
    public char Type { get; }

    public long Integer { get; }

    /// <summary>A bulk string's bytes, or a simple string's or error's text as UTF-8; null for a null bulk string.</summary>
    public byte[]? Bytes { get; }

    public RespValue[]? Items { get; }

    public bool IsError => Type == '-';

    public string? Text => Bytes is null ? null : Encoding.UTF8.GetString(Bytes);

    public override string ToString() => Type switch
    {
        ':' => Integer.ToString(System.Globalization.CultureInfo.InvariantCulture),
        '*' => $"[{string.Join(", ", Items!.Select(i => i.ToString()))}]",
        _ => Text ?? "(nil)",
    };

    /// <summary>
    /// Reads one reply from the start of <paramref name="input"/>: its length in <paramref name="consumed"/>, or false
    /// when <paramref name="input"/> does not hold all of it yet. Input that is not RESP throws <see cref="InvalidDataException"/>.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> input, out RespValue? value, out int consumed)
    {
        var position = 0;
        if (TryRead(input, ref position, 0, out value))
        {
            consumed = position;
            return true;
        }

        consumed = 0;
        return false;
    }

    private static bool TryRead(ReadOnlySpan<byte> input, ref int position, int depth, out RespValue? value)
    {
        value = null;
        var next = position;
        if (!RespPush.TryReadLine(input, ref next, out var line))
        {
            return false;
        }

        switch (line[0])
        {
            case (byte)'+' or (byte)'-' or (byte)',' or (byte)'(':   // RESP3 doubles and big numbers: as text
                value = new RespValue((char)line[0], bytes: line[1..].ToArray());
                break;
            case (byte)'_':   // RESP3 null
                value = new RespValue('$');
                break;
            case (byte)'#':   // RESP3 boolean
                value = new RespValue(':', integer: line is [_, (byte)'t'] ? 1 : 0);
                break;
            case (byte)':':
                value = new RespValue(':', integer: RespPush.ReadInteger(line[1..]));
                break;
            case (byte)'$' or (byte)'=' or (byte)'!':   // bulk string, RESP3 verbatim string or blob error
                var type = line[0] == (byte)'!' ? '-' : '$';
                var length = RespPush.ReadInteger(line[1..]);
                if (length == -1)
                {
                    value = new RespValue('$');
                    break;
                }

                if (length < 0 || length > int.MaxValue - 2)
                {
                    throw new InvalidDataException($"Redis sent a bulk string of length {length}.");
                }

                if (input.Length - next < length + 2)
                {
                    return false;
                }

                value = new RespValue(type, bytes: input.Slice(next, (int)length).ToArray());
                next += (int)length + 2;
                break;
            case (byte)'*' or (byte)'~' or (byte)'%' or (byte)'>':   // array, RESP3 set, map (as key, value, …) or push
                var count = RespPush.ReadInteger(line[1..]) * (line[0] == (byte)'%' ? 2 : 1);
                if (count == -1)
                {
                    value = new RespValue('$');
                    break;
                }

                if (count < 0 || count > MaxElements || depth >= MaxDepth)
                {
                    throw new InvalidDataException($"Redis sent an array of {count} elements at depth {depth}.");
                }

                var items = new RespValue[count];
                for (var i = 0; i < count; i++)
                {
                    if (!TryRead(input, ref next, depth + 1, out var item))
                    {
                        return false;
                    }

                    items[i] = item!;
                }

                value = new RespValue('*', items: items);
                break;
            default:
                throw new InvalidDataException($"Redis sent a value of type '{(char)line[0]}'.");
        }

        position = next;
        return true;
    }
}
