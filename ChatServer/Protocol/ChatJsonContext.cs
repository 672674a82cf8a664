using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChatServer.Protocol;

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(AckFrame))]
[JsonSerializable(typeof(NotificationFrame))]
[JsonSerializable(typeof(GapFrame))]
[JsonSerializable(typeof(PresenceFrame))]
[JsonSerializable(typeof(TypingNotice))]
[JsonSerializable(typeof(DeletedFrame))]
internal sealed partial class ChatJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The context every frame is written with. The default encoder would write <c>é</c> as <c>\u00E9</c> and
    /// <c>'</c> as <c>\u0027</c>; our JSON never enters HTML, so the relaxed encoder keeps text readable in wscat.
    /// Built on first use: the generated half's static initializers may not have run yet.
    /// </summary>
    public static ChatJsonContext Wire => field ??= new(new JsonSerializerOptions(Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static JsonWriterOptions WriterOptions { get; } = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,   // MessageEncoding writes an object it deliberately leaves open
    };
}
