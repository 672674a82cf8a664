using System.Text.Json;

namespace ChatServer.Protocol;

/// <summary>
/// The result of parsing one client frame: the <see cref="Id"/> to echo (even when the frame is rejected), and
/// either the <see cref="Frame"/> or the <see cref="Error"/> a person can act on.
/// </summary>
internal readonly record struct ParsedFrame(JsonElement? Id, ClientFrame? Frame, string? Error)
{
    public static ParsedFrame Rejected(JsonElement? id, string error) => new(id, null, error);
}
