using System.Collections.Concurrent;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Rooms;

/// <summary>
/// The rooms this instance serves, one <see cref="RoomFeed"/> each. A feed subscribes to its room's channel when its
/// first local member joins and unsubscribes when its last one leaves, so an instance carries no traffic for rooms it
/// does not serve. Each feed has its own gate, so a slow subscribe in one room never holds up another.
/// </summary>
internal sealed class RoomRegistry(IMessageLog log, IRoomChannel channel, IOptions<ChatOptions> options, ChatMetrics metrics,
    TimeProvider time, ILogger<RoomFeed> logger) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, RoomFeed> _rooms = new(StringComparer.Ordinal);
    private readonly RoomFeedSettings _settings = new(options.Value.HistoryLength, options.Value.RepairRetryDelay);

    /// <summary>Rooms with at least one local member (or being joined).</summary>
    public int RoomCount => _rooms.Count;

    /// <summary>A snapshot of the rooms served now.</summary>
    public IReadOnlyList<RoomFeed> Rooms => [.. _rooms.Values];

    /// <summary>
    /// Joins <paramref name="member"/> to its room (see <see cref="RoomFeed.AddAsync"/>): <paramref name="ack"/> builds
    /// its ack from what was read, and live entries follow it. Throws <see cref="StoreUnavailableException"/>, changing nothing.
    /// </summary>
    public async Task JoinAsync(RoomMember member, JoinRequest request, Func<LogSlice, byte[]> ack, CancellationToken cancellationToken)
    {
        while (true)
        {
            var feed = _rooms.GetOrAdd(member.Room, name => new RoomFeed(name, log, channel, _settings, metrics, time, logger));
            try
            {
                if (await feed.AddAsync(member, request, ack, cancellationToken))
                {
                    return;
                }
            }
            finally
            {
                Forget(feed);
            }
        }
    }

    /// <summary>The furthest this instance has seen of <paramref name="room"/>'s log (the failover guard's mark), if it serves it.</summary>
    public LogMark? Seen(string room) => _rooms.TryGetValue(room, out var feed) ? feed.Seen : null;

    /// <summary>Closes every local connection of <paramref name="user"/> in <paramref name="room"/> (a kick); returns how many.</summary>
    public int RemoveLocal(string room, string user, string reason)
    {
        var removed = 0;
        if (_rooms.TryGetValue(room, out var feed))
        {
            foreach (var member in feed.Members.Where(m => string.Equals(m.User, user, StringComparison.Ordinal)))
            {
                member.Remove(reason);
                removed++;
            }
        }

        return removed;
    }

    /// <summary>How many local connections each user has in <paramref name="room"/>.</summary>
    public Dictionary<string, int> LocalConnections(string room) =>
        _rooms.TryGetValue(room, out var feed)
            ? feed.Members.GroupBy(m => m.User, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal)
            : new Dictionary<string, int>(StringComparer.Ordinal);

    public async Task LeaveAsync(RoomMember member)
    {
        member.MarkLeft();
        if (_rooms.TryGetValue(member.Room, out var feed))
        {
            await feed.RemoveAsync(member);
            Forget(feed);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var feed in _rooms.Values)
        {
            await feed.DisposeAsync();
        }
    }

    /// <summary>Drops a retired feed from the map (a fresh one serves the next joiner).</summary>
    private void Forget(RoomFeed feed)
    {
        if (feed.IsRetired)
        {
            _rooms.TryRemove(KeyValuePair.Create(feed.Name, feed));
        }
    }
}
