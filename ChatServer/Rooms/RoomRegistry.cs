using System.Collections.Concurrent;
using ChatServer.Hosting;

namespace ChatServer.Rooms;

/// <summary>
/// The rooms this instance serves. An instance subscribes to a room's channel when its first local member joins and
/// unsubscribes when its last one leaves, so it carries no traffic for rooms it does not serve. Each room has its own
/// gate, so a slow subscribe in one room never holds up another.
/// </summary>
internal sealed class RoomRegistry(IRoomBus bus, ChatMetrics metrics, ILogger<RoomRegistry> logger)
{
    private readonly ConcurrentDictionary<string, Room> _rooms = new(StringComparer.Ordinal);

    /// <summary>Rooms with at least one local member (or being joined).</summary>
    public int RoomCount => _rooms.Count;

    /// <summary>Adds <paramref name="member"/> to its room, subscribing first if needed; entries flow to it on return.</summary>
    public async Task JoinAsync(RoomMember member)
    {
        while (true)
        {
            var room = _rooms.GetOrAdd(member.Room, static name => new Room(name));
            await room.Gate.WaitAsync();
            try
            {
                if (room.Removed)
                {
                    continue;   // lost a race with the last leaver; a fresh Room is (or will be) in the map
                }

                if (room.Subscription is null)
                {
                    try
                    {
                        room.Subscription = await bus.SubscribeAsync(room.Name, room.Deliver);
                        RoomLog.Subscribed(logger, room.Name);
                        metrics.RoomSubscribed();
                    }
                    catch when (room.Count == 0)
                    {
                        Forget(room);
                        throw;
                    }
                }

                room.Add(member);
                return;
            }
            finally
            {
                room.Gate.Release();
            }
        }
    }

    public async Task LeaveAsync(RoomMember member)
    {
        member.MarkLeft();
        if (!_rooms.TryGetValue(member.Room, out var room))
        {
            return;
        }

        await room.Gate.WaitAsync();
        try
        {
            if (room.Remove(member) > 0 || room.Removed)
            {
                return;
            }

            Forget(room);
            if (room.Subscription is { } subscription)
            {
                room.Subscription = null;
                await subscription.DisposeAsync();
                RoomLog.Unsubscribed(logger, room.Name);
                metrics.RoomUnsubscribed();
            }
        }
        finally
        {
            room.Gate.Release();
        }
    }

    private void Forget(Room room)
    {
        room.Removed = true;
        _rooms.TryRemove(KeyValuePair.Create(room.Name, room));
    }
}
