namespace ChatServer.Rooms;

/// <summary>
/// What a presence operation changed across all instances: <see cref="Changed"/> is true when the user became present
/// (its first entry) or absent (its last); <see cref="Gone"/> lists users whose last entry had expired and was swept.
/// </summary>
internal sealed record PresenceChange(bool Changed, IReadOnlyList<string> Gone)
{
    public static PresenceChange None { get; } = new(false, []);
}
