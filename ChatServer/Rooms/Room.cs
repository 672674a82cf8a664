namespace ChatServer.Rooms;

/// <summary>
/// One room's local members on this instance. <see cref="Gate"/> serializes joins and leaves of this room (they await
/// Redis to (un)subscribe); the member list is copy-on-write, so <see cref="Deliver"/> never takes a lock.
/// </summary>
internal sealed class Room(string name)
{
    private readonly Lock _sync = new();
    private RoomMember[] _members = [];

    public string Name { get; } = name;

    public SemaphoreSlim Gate { get; } = new(1, 1);

    /// <summary>Set under <see cref="Gate"/>: the bus delivers to this room while it is not null.</summary>
    public IAsyncDisposable? Subscription { get; set; }

    /// <summary>Set under <see cref="Gate"/> once the room left the registry; a joiner that finds it retries.</summary>
    public bool Removed { get; set; }

    public int Count => Volatile.Read(ref _members).Length;

    public int Add(RoomMember member)
    {
        lock (_sync)
        {
            _members = [.. _members, member];
            return _members.Length;
        }
    }

    public int Remove(RoomMember member)
    {
        lock (_sync)
        {
            _members = [.. _members.Where(m => m != member)];
            return _members.Length;
        }
    }

    /// <summary>Called by the bus, one entry at a time in order; only enqueues, never blocks.</summary>
    public void Deliver(RoomEntry entry)
    {
        foreach (var member in Volatile.Read(ref _members))
        {
            member.Deliver(entry);
        }
    }
}
