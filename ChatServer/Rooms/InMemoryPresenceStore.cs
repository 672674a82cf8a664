using System.Collections.Concurrent;

namespace ChatServer.Rooms;

/// <summary>
/// Presence for one instance: a set of users per room, no expiry needed (the tracker counts connections). A room's set
/// goes with its last user, so rooms that were visited and left hold nothing.
/// </summary>
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

    /// <summary>Rooms with at least one user (tests).</summary>
    internal int RoomCount => _rooms.Count;

    public Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room)
    {
        if (!_rooms.TryGetValue(room, out var users))
        {
            return Task.FromResult<(IReadOnlyList<string>, PresenceChange)>(([], PresenceChange.None));
        }

        lock (users)
        {
            return Task.FromResult<(IReadOnlyList<string>, PresenceChange)>(([.. users.Order(StringComparer.Ordinal)], PresenceChange.None));
        }
    }

    private PresenceChange Change(string room, Func<HashSet<string>, bool> change)
    {
        while (true)
        {
            var users = _rooms.GetOrAdd(room, static _ => new HashSet<string>(StringComparer.Ordinal));
            lock (users)
            {
                if (!_rooms.TryGetValue(room, out var current) || current != users)
                {
                    continue;   // emptied and removed meanwhile: use the room's new set
                }

                var changed = change(users);
                if (users.Count == 0)
                {
                    _rooms.TryRemove(KeyValuePair.Create(room, users));   // under the set's lock, checked above
                }

                return changed ? new PresenceChange(true, []) : PresenceChange.None;
            }
        }
    }
}
