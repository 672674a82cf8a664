using System.Collections.Concurrent;

namespace ChatServer.Rooms;

/// <summary>Presence for one instance: a set of users per room, no expiry needed (the tracker counts connections).</summary>
internal sealed class InMemoryPresenceStore : IPresenceStore
{
    private readonly ConcurrentDictionary<string, HashSet<string>> _rooms = new(StringComparer.Ordinal);

    public Task<PresenceChange> JoinAsync(string room, string instance, string user, DateTimeOffset expiresAt) =>
        Task.FromResult(Change(room, users => users.Add(user)));

    public Task<PresenceChange> LeaveAsync(string room, string instance, string user) =>
        Task.FromResult(Change(room, users => users.Remove(user)));

    public Task<IReadOnlyList<PresenceChange>> RefreshAsync(IReadOnlyList<(string Room, string User)> entries, string instance,
        DateTimeOffset expiresAt) =>
        Task.FromResult<IReadOnlyList<PresenceChange>>([.. entries.Select(e => Change(e.Room, users => users.Add(e.User)))]);

    public Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room)
    {
        var users = Users(room);
        lock (users)
        {
            return Task.FromResult<(IReadOnlyList<string>, PresenceChange)>(([.. users.Order(StringComparer.Ordinal)], PresenceChange.None));
        }
    }

    private PresenceChange Change(string room, Func<HashSet<string>, bool> change)
    {
        var users = Users(room);
        lock (users)
        {
            return change(users) ? new PresenceChange(true, []) : PresenceChange.None;
        }
    }

    private HashSet<string> Users(string room) => _rooms.GetOrAdd(room, static _ => new HashSet<string>(StringComparer.Ordinal));
}
