namespace ChatServer.Rooms;

/// <summary>Where a member's frames go (a connection's outgoing queue). Rooms know nothing more of a connection.</summary>
internal interface IFrameSink
{
    /// <summary>Unique across instances; a notification names the sink it came from, which does not get it back.</summary>
    string Id { get; }

    /// <summary>Queues one text frame; never blocks (a sink that cannot keep up closes itself).</summary>
    bool TryEnqueue(ReadOnlyMemory<byte> frame);

    /// <summary>The operator removed this connection from its room (a kick or a ban): it closes, saying why.</summary>
    void Remove(string reason);
}
