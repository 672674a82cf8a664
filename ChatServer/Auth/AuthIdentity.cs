namespace ChatServer.Auth;

/// <summary>
/// Who a validated token says the connection is: <see cref="User"/> (the name shown in every frame), until
/// <see cref="ExpiresAt"/>, allowed into <see cref="Rooms"/> (<c>null</c>: every room).
/// </summary>
internal sealed record AuthIdentity(string User, DateTimeOffset ExpiresAt, IReadOnlyList<string>? Rooms)
{
    /// <summary>PROTOCOL.md: an entry ending in <c>*</c> matches any suffix, <c>*</c> alone any room; names are case-sensitive.</summary>
    public bool MayJoin(string room) => Rooms is null || Rooms.Any(pattern => pattern.EndsWith('*')
        ? room.StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal)
        : string.Equals(pattern, room, StringComparison.Ordinal));
}
