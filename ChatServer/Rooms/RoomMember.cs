using ChatServer.Connections;

namespace ChatServer.Rooms;

/// <summary>
/// One connection's membership of one room. It makes PROTOCOL.md's "no gap, no duplicate between the ack and the live
/// messages" true: while joining it buffers what the room delivers; <see cref="GoLive"/> enqueues the ack, then the
/// buffered entries the ack did not cover. Afterwards it drops any <c>seq</c> it has already passed on.
/// </summary>
internal sealed class RoomMember(ChatConnection connection, string room, string user)
{
    private readonly Lock _sync = new();
    private List<RoomEntry>? _pending = [];
    private bool _left;
    private string _epoch = "";
    private long _lastSeq;

    public ChatConnection Connection { get; } = connection;

    public string Room { get; } = room;

    public string User { get; set; } = user;

    public void Deliver(in RoomEntry entry)
    {
        lock (_sync)
        {
            if (_left)
            {
                return;
            }

            if (_pending is not null)
            {
                _pending.Add(entry);
                return;
            }

            DeliverLive(entry);
        }
    }

    /// <summary>Starts buffering again, for a sign-in to the room this connection is already in.</summary>
    public void BeginResync()
    {
        lock (_sync)
        {
            _pending ??= [];
        }
    }

    /// <summary>
    /// Enqueues <paramref name="ack"/> (if any), then every buffered entry newer than <paramref name="lastSeq"/>, and
    /// delivers live from then on. The ack covered everything up to <paramref name="lastSeq"/> of <paramref name="epoch"/>.
    /// </summary>
    public void GoLive(byte[]? ack, string epoch, long lastSeq)
    {
        lock (_sync)
        {
            if (ack is not null)
            {
                Connection.TryEnqueue(ack);
                (_epoch, _lastSeq) = (epoch, lastSeq);
            }

            var pending = _pending ?? [];
            _pending = null;
            foreach (var entry in pending)
            {
                DeliverLive(entry);
            }
        }
    }

    /// <summary>Stops all delivery at once (the connection is leaving or closing).</summary>
    public void MarkLeft()
    {
        lock (_sync)
        {
            _left = true;
            _pending = null;
        }
    }

    private void DeliverLive(in RoomEntry entry)
    {
        if (entry.Kind == RoomEntryKind.Notification)
        {
            if (!string.Equals(entry.Origin, Connection.Id, StringComparison.Ordinal))   // "every other connection"
            {
                Connection.TryEnqueue(entry.Json);
            }

            return;
        }

        var sameEpoch = string.Equals(entry.Epoch, _epoch, StringComparison.Ordinal);
        if (sameEpoch && entry.Seq <= _lastSeq)
        {
            return;   // already in the ack's history, or delivered (for a gap: this member's ack already covered it)
        }

        (_epoch, _lastSeq) = (entry.Epoch, entry.Seq);
        Connection.TryEnqueue(entry.Json);
    }
}
