using System.Buffers.Text;

namespace ChatServer.Hosting;

/// <summary>What a subscribed Redis connection sends (RESP2): pushes, subscription confirmations, and simple replies.</summary>
internal enum RespPushKind
{
    /// <summary>A reply or push this connection has no use for (<c>+OK</c>, <c>unsubscribe</c>, <c>pong</c>).</summary>
    Other,

    /// <summary><c>message</c>: a channel's payload.</summary>
    Message,

    /// <summary><c>subscribe</c>: one channel of a <c>SUBSCRIBE</c> is in effect.</summary>
    Subscribe,

    /// <summary>A top-level error reply (<c>-ERR …</c>, <c>-NOAUTH …</c>).</summary>
    Error,
}

/// <summary>
/// One RESP2 value as a subscribed connection receives it: a simple string, an error, an integer, or an array of bulk
/// strings and integers (<c>*3 $7 message $&lt;channel&gt; $&lt;payload&gt;</c>). Parsed in place from the receive
/// buffer; <see cref="Channel"/> and <see cref="Payload"/> are ranges of it.
/// </summary>
internal readonly record struct RespPush(RespPushKind Kind, Range Channel, Range Payload)
{
    private const int MaxElements = 16;

    /// <summary>
    /// Reads one value from the start of <paramref name="input"/>: its length in <paramref name="consumed"/>, or
    /// false when <paramref name="input"/> does not hold all of it yet. Input that is not RESP throws
    /// <see cref="InvalidDataException"/>.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> input, out RespPush push, out int consumed)
    {
        push = default;
        consumed = 0;
        var position = 0;
        if (!TryReadLine(input, ref position, out var line))
        {
            return false;
        }

        switch (line[0])
        {
            case (byte)'+' or (byte)':':
                push = new RespPush(RespPushKind.Other, default, default);
                consumed = position;
                return true;
            case (byte)'-':
                push = new RespPush(RespPushKind.Error, default, new Range(1, position - 2));
                consumed = position;
                return true;
            case (byte)'*' or (byte)'>':   // an array (RESP2) or a push (RESP3)
                break;
            default:
                throw new InvalidDataException($"Redis sent a value of type '{(char)line[0]}' where a push was expected.");
        }

        var count = ReadInteger(line[1..]);
        if (count is < 0 or > MaxElements)
        {
            throw new InvalidDataException($"Redis sent an array of {count} elements where a push was expected.");
        }

        Span<Range> elements = stackalloc Range[3];
        for (var i = 0; i < count; i++)
        {
            if (!TryReadLine(input, ref position, out line))
            {
                return false;
            }

            var element = default(Range);
            switch (line[0])
            {
                case (byte)'$':
                    var length = ReadInteger(line[1..]);
                    if (length < -1 || length > int.MaxValue - 2)
                    {
                        throw new InvalidDataException($"Redis sent a bulk string of length {length}.");
                    }

                    if (length >= 0)
                    {
                        if (input.Length - position < length + 2)
                        {
                            return false;
                        }

                        if (input[position + (int)length] != (byte)'\r' || input[position + (int)length + 1] != (byte)'\n')
                        {
                            throw new InvalidDataException("Redis sent a bulk string without its line end.");
                        }

                        element = new Range(position, position + (int)length);
                        position += (int)length + 2;
                    }

                    break;
                case (byte)':' or (byte)'+' or (byte)'_' or (byte)'#' or (byte)',' or (byte)'(':
                    break;
                default:
                    throw new InvalidDataException($"Redis sent an element of type '{(char)line[0]}' inside a push.");
            }

            if (i < elements.Length)
            {
                elements[i] = element;
            }
        }

        var kind = count < 2 ? RespPushKind.Other : input[elements[0]] switch
        {
            var name when count == 3 && name.SequenceEqual("message"u8) => RespPushKind.Message,
            var name when count == 3 && name.SequenceEqual("subscribe"u8) => RespPushKind.Subscribe,
            _ => RespPushKind.Other,
        };
        push = new RespPush(kind, count >= 2 ? elements[1] : default, count >= 3 ? elements[2] : default);
        consumed = position;
        return true;
    }

    /// <summary>The line at <paramref name="position"/> without its CRLF (never empty), or false when it is not all there yet.</summary>
    internal static bool TryReadLine(ReadOnlySpan<byte> input, ref int position, out ReadOnlySpan<byte> line)
    {
        var end = input[position..].IndexOf("\r\n"u8);
        if (end < 0)
        {
            line = default;
            return false;
        }

        line = input.Slice(position, end);
        if (line.IsEmpty)
        {
            throw new InvalidDataException("Redis sent an empty line.");
        }

        position += end + 2;
        return true;
    }

    internal static long ReadInteger(ReadOnlySpan<byte> digits) =>
        Utf8Parser.TryParse(digits, out long value, out var used) && used == digits.Length
            ? value
            : throw new InvalidDataException("Redis sent a malformed number.");
}
