using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Protocol;

/// <summary>
/// The content rules of PROTOCOL.md's validation table. "Characters" are Unicode code points; "control characters"
/// are category Cc. Names are trimmed; text is kept exactly as sent. Each method returns <c>null</c> or the error.
/// </summary>
internal sealed class FrameValidator(IOptions<ChatOptions> options)
{
    private readonly ChatOptions _options = options.Value;

    public string? ValidateUser(string? user, out string trimmed) => ValidateName("user", user, _options.MaxUserLength, out trimmed);

    public string? ValidateRoom(string? room, out string trimmed) => ValidateName("room", room, _options.MaxRoomLength, out trimmed);

    public string? ValidateText(string? text)
    {
        if (text is null)
        {
            return "Field 'text' is required and must be a string.";
        }

        if (!IsWellFormed(text))
        {
            return SurrogateError("text");
        }

        var length = CountCodePoints(text);
        if (length < 1 || length > _options.MaxTextLength)
        {
            return $"Field 'text' must be 1 to {_options.MaxTextLength} characters (it has {length}).";
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            return "Field 'text' must not be only white space.";
        }

        foreach (var c in text)
        {
            if (char.IsControl(c) && c is not ('\t' or '\r' or '\n'))
            {
                return "Field 'text' must not contain control characters (tab, CR and LF are allowed).";
            }
        }

        return null;
    }

    /// <summary>Longest <c>search</c> query, in characters.</summary>
    public const int MaxQueryLength = 200;

    /// <summary>A <c>search</c> query (protocol 1.2): 1–200 characters, some of them not white space, no control characters.</summary>
    public static string? ValidateQuery(string? query)
    {
        if (query is null)
        {
            return "Field 'q' is required and must be a string.";
        }

        var length = CountCodePoints(query);
        if (length is < 1 or > MaxQueryLength || string.IsNullOrWhiteSpace(query))
        {
            return $"Field 'q' must be 1 to {MaxQueryLength} characters, not only white space (it has {length}).";
        }

        foreach (var c in query)
        {
            if (char.IsControl(c))
            {
                return "Field 'q' must not contain control characters.";
            }
        }

        return IsWellFormed(query) ? null : "Field 'q' must be valid Unicode (no unpaired surrogates).";
    }

    /// <summary>A <c>before</c> that is no integer &gt;= 0 (<c>history</c>, <c>search</c>, and the server API's query).</summary>
    public const string BeforeError = "Field 'before' must be an integer >= 0 (a seq; older messages are returned).";

    /// <summary>A <c>seq</c> that is missing or no integer &gt;= 1 (<c>deleteMessage</c>, and the server API's path).</summary>
    public const string SeqError = "Field 'seq' is required and must be an integer >= 1.";

    /// <summary>A missing <c>epoch</c> where one is required (<c>deleteMessage</c>).</summary>
    public const string EpochRequiredError = "Field 'epoch' is required and must be a string.";

    /// <summary>A <c>limit</c> outside 1..<paramref name="max"/>.</summary>
    public static string LimitError(int max) => $"Field 'limit' must be an integer from 1 to {max}.";

    /// <summary>A field that must be a string and is another JSON type.</summary>
    public static string StringTypeError(string field) => $"Field '{field}' must be a string.";

    /// <summary>A string field holding an escaped lone surrogate: valid JSON, but not text.</summary>
    public static string SurrogateError(string field) => $"Field '{field}' must be valid Unicode (no unpaired surrogates).";

    /// <summary><c>deleteMessage</c> (and the server API's delete) of a message that history does not hold.</summary>
    public static string NotInHistoryError(long seq, string epoch) => $"Message {seq} of epoch '{epoch}' is not in this room's history.";

    /// <summary>PROTOCOL.md "Sends that survive a reconnect": the one sentence for every bad <c>key</c>.</summary>
    public const string KeyError = "Field 'key' must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.";

    /// <summary>An absent key is fine (v1 behaviour); a present one is 1–64 of <c>A-Z a-z 0-9 _ -</c>.</summary>
    public static string? ValidateKey(string? key)
    {
        if (key is null)
        {
            return null;
        }

        if (key.Length is < 1 or > 64)
        {
            return KeyError;
        }

        foreach (var c in key)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                return KeyError;
            }
        }

        return null;
    }

    private static string? ValidateName(string field, string? value, int maxLength, out string trimmed)
    {
        trimmed = "";
        if (value is null)
        {
            return $"Field '{field}' is required and must be a string.";
        }

        if (!IsWellFormed(value))
        {
            return SurrogateError(field);
        }

        trimmed = value.Trim();
        var length = CountCodePoints(trimmed);
        if (length < 1 || length > maxLength)
        {
            return $"Field '{field}' must be 1 to {maxLength} characters after trimming (it has {length}).";
        }

        foreach (var c in trimmed)
        {
            if (char.IsControl(c))
            {
                return $"Field '{field}' must not contain control characters.";
            }
        }

        return null;
    }

    /// <summary>Code points, not UTF-16 units: an emoji counts once. (Cc holds no surrogates, so the control checks can scan units.)</summary>
    private static int CountCodePoints(string value)
    {
        var count = 0;
        foreach (var _ in value.EnumerateRunes())
        {
            count++;
        }

        return count;
    }

    /// <summary>A lone surrogate (legal in JSON as an escape) cannot be written back out as UTF-8.</summary>
    private static bool IsWellFormed(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                return false;
            }
        }

        return true;
    }
}
