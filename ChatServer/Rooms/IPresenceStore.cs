namespace ChatServer.Rooms;

/// <summary>
/// Who is in which room across instances: one entry per (instance, user) with an expiry, and per user a count of the
/// instances holding it. Every operation first sweeps the room's expired entries and reports the users that left that way.
/// </summary>
internal interface IPresenceStore
{
    /// <summary>Records (or renews) that <paramref name="user"/> is in the room on <paramref name="instance"/> until <paramref name="expiresAt"/>.</summary>
    Task<PresenceChange> JoinAsync(string room, string instance, string user, DateTimeOffset expiresAt);

    /// <summary>Removes this instance's entry for <paramref name="user"/>.</summary>
    Task<PresenceChange> LeaveAsync(string room, string instance, string user);

    /// <summary>Renews many entries in one batch (pipelined, not one round trip after another); results in input order.</summary>
    Task<IReadOnlyList<PresenceChange>> RefreshAsync(IReadOnlyList<(string Room, string User)> entries, string instance,
        DateTimeOffset expiresAt);

    /// <summary>Each user present in the room once, sorted.</summary>
    Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room);
}
