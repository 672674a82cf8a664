namespace ChatServer.Rooms;

/// <summary>
/// One sink's membership of one room. The room feed decides what it receives and when (PROTOCOL.md's ordering rule
/// lives there, once); the member only routes: notifications go to every member but the one they came from.
/// </summary>
internal sealed class RoomMember(IFrameSink sink, string room)
{
    private volatile bool _left;

    public string Room { get; } = room;

    /// <summary>Whom the connection speaks as in the room (a sign-in again may change it); what a kick matches.</summary>
    public string User { get; set; } = "";

    /// <summary>Closes the member's connection: the operator removed it (see <see cref="IFrameSink.Remove"/>).</summary>
    public void Remove(string reason) => sink.Remove(reason);

    /// <summary>Sends a frame outside the room's sequence (its ack, a gap).</summary>
    public void Send(ReadOnlyMemory<byte> frame)
    {
        if (!_left)
        {
            sink.TryEnqueue(frame);
        }
    }

    /// <summary>Called by the feed, one entry at a time in order; only enqueues, never blocks.</summary>
    public void Deliver(in RoomEntry entry)
    {
        if (_left || (entry.Kind == RoomEntryKind.Notification && string.Equals(entry.Origin, sink.Id, StringComparison.Ordinal)))
        {
            return;   // left, or its own notification ("every other connection")
        }

        sink.TryEnqueue(entry.Json);
    }

    /// <summary>Stops all delivery at once (the connection is leaving, moving or closing).</summary>
    public void MarkLeft() => _left = true;
}
