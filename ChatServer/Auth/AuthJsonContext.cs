using System.Text.Json.Serialization;

namespace ChatServer.Auth;

/// <summary>The body of <c>GET /auth/config</c>: <c>{"required":true,"user":"Alice Doe"}</c>.</summary>
internal sealed record AuthStatus(bool Required, string? User);

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AuthStatus))]
internal sealed partial class AuthJsonContext : JsonSerializerContext;
