using System.Text.Json;

namespace ChatServer.Tests;

/// <summary>One frame the server sent, with typed views of the protocol's fields.</summary>
public sealed class Frame(string raw)
{
    private readonly JsonElement _root = JsonDocument.Parse(raw).RootElement;

    public string Raw { get; } = raw;

    public JsonElement Root => _root;

    public string? Type => String("type");
    public bool Ok => _root.TryGetProperty("ok", out var v) && v.ValueKind == JsonValueKind.True;
    public string? Error => String("error");
    public string? User => String("user");
    public string? Room => String("room");
    public string? Text => String("text");
    public string? Epoch => String("epoch");
    public string? Title => String("title");
    public string? Description => String("description");
    public string? Ts => String("ts");
    public long? Seq => _root.TryGetProperty("seq", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;
    public bool? Recovered => _root.TryGetProperty("recovered", out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    /// <summary>The raw JSON text of <c>id</c>, or null when absent.</summary>
    public string? IdJson => _root.TryGetProperty("id", out var v) ? v.GetRawText() : null;

    public bool HasMessages => _root.TryGetProperty("messages", out var v) && v.ValueKind == JsonValueKind.Array;

    public IReadOnlyList<Frame> Messages =>
        _root.TryGetProperty("messages", out var v) && v.ValueKind == JsonValueKind.Array
            ? [.. v.EnumerateArray().Select(m => new Frame(m.GetRawText()))]
            : [];

    public bool IsAck(object id) => Type == "ack" && IdJson == JsonSerializer.Serialize(id);

    public override string ToString() => Raw;

    private string? String(string name) =>
        _root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
