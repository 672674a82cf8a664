using System.Text.Json;

namespace ChatServer.Protocol;

/// <summary>
/// Turns the bytes of one text frame into a <see cref="ClientFrame"/>: JSON syntax and field types only. The content
/// rules (lengths, control characters) are <see cref="FrameValidator"/>'s. Envelope first (<c>id</c>, <c>type</c>), so a
/// rejected frame still echoes its id (PROTOCOL.md, "Transport").
/// </summary>
internal static class FrameParser
{
    private static readonly JsonDocumentOptions s_documentOptions = new() { MaxDepth = 64 };

    public static ParsedFrame Parse(ReadOnlyMemory<byte> utf8)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, s_documentOptions);
        }
        catch (JsonException)
        {
            return ParsedFrame.Rejected(null, "The frame is not valid JSON: send one UTF-8 JSON object per text frame.");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ParsedFrame.Rejected(null, "The frame must be a JSON object with a string field 'type'.");
            }

            JsonElement? id = null;
            if (root.TryGetProperty("id"u8, out var idValue))
            {
                switch (idValue.ValueKind)
                {
                    case JsonValueKind.String when !IsText(idValue):
                        return ParsedFrame.Rejected(null, FrameValidator.SurrogateError("id"));
                    case JsonValueKind.String or JsonValueKind.Number:
                        id = idValue.Clone();   // outlives the document and the receive buffer
                        break;
                    case JsonValueKind.Null:
                        break;                  // "id": null counts as no id
                    default:
                        return ParsedFrame.Rejected(null, "Field 'id' must be a string or a number.");
                }
            }

            if (!root.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String || !IsText(type))
            {
                return ParsedFrame.Rejected(id, "Field 'type' is required and must be a string.");
            }

            return type.GetString() switch
            {
                FrameTypes.SignIn => ReadSignIn(root, id),
                FrameTypes.SendMessage => ReadSendMessage(root, id),
                FrameTypes.UpdateSocketId => ReadUpdateSocketId(root, id),
                FrameTypes.Members => new(id, new MembersFrame(), null),
                FrameTypes.Typing => new(id, new TypingFrame(), null),
                FrameTypes.Search => ReadSearch(root, id),
                FrameTypes.DeleteMessage => ReadDeleteMessage(root, id),
                FrameTypes.History => ReadHistory(root, id),
                FrameTypes.Auth => TryReadString(root, "token", out var token, out var tokenError)
                    ? new(id, new AuthFrame(token), null)
                    : ParsedFrame.Rejected(id, tokenError),
                var unknown => ParsedFrame.Rejected(id,
                    $"Unknown frame type '{Shorten(unknown)}': expected signin, sendMessage, updateSocketId, members, history, search, deleteMessage or typing."),
            };
        }
    }

    private static ParsedFrame ReadSignIn(JsonElement root, JsonElement? id)
    {
        if (!TryReadString(root, "user", out var user, out var error) || !TryReadString(root, "room", out var room, out error))
        {
            return ParsedFrame.Rejected(id, error);
        }

        return new(id, new SignInFrame(user, room), null);
    }

    private static ParsedFrame ReadSendMessage(JsonElement root, JsonElement? id)
    {
        if (!TryReadString(root, "text", out var text, out var error))
        {
            return ParsedFrame.Rejected(id, error);
        }

        // A key of the wrong type gets the key rule's own sentence, as a key of the wrong shape does.
        return TryReadString(root, "key", out var key, out _)
            ? new(id, new SendMessageFrame(text, key), null)
            : ParsedFrame.Rejected(id, FrameValidator.KeyError);
    }

    private static ParsedFrame ReadUpdateSocketId(JsonElement root, JsonElement? id)
    {
        if (!TryReadString(root, "user", out var user, out var error)
            || !TryReadString(root, "room", out var room, out error)
            || !TryReadString(root, "epoch", out var epoch, out error))
        {
            return ParsedFrame.Rejected(id, error);
        }

        long? since = null;
        if (root.TryGetProperty("since"u8, out var sinceValue) && sinceValue.ValueKind != JsonValueKind.Null)
        {
            if (sinceValue.ValueKind != JsonValueKind.Number || !sinceValue.TryGetInt64(out var value) || value < 0)
            {
                return ParsedFrame.Rejected(id, "Field 'since' must be an integer >= 0 (the highest seq already seen).");
            }

            since = value;
        }

        return new(id, new UpdateSocketIdFrame(user, room, since, epoch), null);
    }

    private static ParsedFrame ReadHistory(JsonElement root, JsonElement? id)
    {
        if (!TryReadInteger(root, "before", 0, long.MaxValue, out var before))
        {
            return ParsedFrame.Rejected(id, FrameValidator.BeforeError);
        }

        if (!TryReadInteger(root, "limit", 1, HistoryPageLimit, out var limit))
        {
            return ParsedFrame.Rejected(id, FrameValidator.LimitError(HistoryPageLimit));
        }

        return TryReadString(root, "epoch", out var epoch, out var epochError)
            ? new(id, new HistoryFrame(before, (int?)limit, epoch), null)
            : ParsedFrame.Rejected(id, epochError);
    }

    /// <summary>Most messages one <c>history</c> frame returns.</summary>
    public const int HistoryPageLimit = 100;

    /// <summary>Most messages one <c>search</c> frame returns.</summary>
    public const int SearchPageLimit = 50;

    private static ParsedFrame ReadSearch(JsonElement root, JsonElement? id)
    {
        if (!TryReadString(root, "q", out var query, out var error) || !TryReadString(root, "epoch", out var epoch, out error))
        {
            return ParsedFrame.Rejected(id, error);
        }

        if (!TryReadInteger(root, "limit", 1, SearchPageLimit, out var limit))
        {
            return ParsedFrame.Rejected(id, FrameValidator.LimitError(SearchPageLimit));
        }

        if (!TryReadInteger(root, "before", 0, long.MaxValue, out var before))
        {
            return ParsedFrame.Rejected(id, FrameValidator.BeforeError);
        }

        return new(id, new SearchFrame(query, (int?)limit, before, epoch), null);
    }

    private static ParsedFrame ReadDeleteMessage(JsonElement root, JsonElement? id)
    {
        if (!TryReadInteger(root, "seq", 1, long.MaxValue, out var seq) || seq is null)
        {
            return ParsedFrame.Rejected(id, FrameValidator.SeqError);
        }

        if (!TryReadString(root, "epoch", out var epoch, out var error))
        {
            return ParsedFrame.Rejected(id, error);
        }

        return epoch is null
            ? ParsedFrame.Rejected(id, FrameValidator.EpochRequiredError)
            : new(id, new DeleteMessageFrame(seq.Value, epoch), null);
    }

    private static bool TryReadInteger(JsonElement root, string name, long min, long max, out long? value)
    {
        value = null;
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var number) || number < min || number > max)
        {
            return false;
        }

        value = number;
        return true;
    }

    /// <summary>
    /// Absent and <c>null</c> read as <c>null</c> (the validator names what is missing); other types fail. The server
    /// API reads its JSON bodies with it too, so a field of the wrong type gets the same sentence there.
    /// </summary>
    internal static bool TryReadString(JsonElement root, string name, out string? value, out string error)
    {
        value = null;
        error = "";
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (element.ValueKind != JsonValueKind.String)
        {
            error = FrameValidator.StringTypeError(name);
            return false;
        }

        try
        {
            value = element.GetString();
        }
        catch (InvalidOperationException)   // an escaped lone surrogate ("\ud800") is valid JSON but not text
        {
            error = FrameValidator.SurrogateError(name);
            return false;
        }

        return true;
    }

    /// <summary>An escaped lone surrogate is valid JSON but cannot be written back out, so it cannot be echoed.</summary>
    private static bool IsText(JsonElement value)
    {
        try
        {
            _ = value.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static string Shorten(string? value) =>
        value is null ? "" : value.Length <= 40 ? value : string.Concat(value.AsSpan(0, 40), "…");
}
