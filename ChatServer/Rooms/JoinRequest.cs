namespace ChatServer.Rooms;

/// <summary>How a member joins a room, and so what its ack must carry (PROTOCOL.md, <c>signin</c> and <c>updateSocketId</c>).</summary>
internal abstract record JoinRequest
{
    /// <summary><c>signin</c>: the room's whole stored history.</summary>
    public static JoinRequest SignIn { get; } = new SignInJoin();

    /// <summary><c>updateSocketId</c>: with <paramref name="since"/>, what came after it; without, nothing.</summary>
    public static JoinRequest Resume(long? since, string? epoch) => new ResumeJoin(since, epoch);
}

internal sealed record SignInJoin : JoinRequest;

internal sealed record ResumeJoin(long? Since, string? Epoch) : JoinRequest
{
    /// <summary>
    /// Whether the ack must carry the whole current history: the client's epoch is not the log's (the history was lost
    /// and restarted), or its <see cref="Since"/> lies beyond the head (the same, seen from the numbers).
    /// </summary>
    public bool RestartsFrom(LogSlice log) =>
        Since is { } since && ((Epoch is not null && !string.Equals(Epoch, log.Epoch, StringComparison.Ordinal)) || since > log.Head);

    /// <summary>
    /// The messages after <see cref="Since"/>, and whether they are all of them. A restarted history: the whole slice
    /// (the feed reads it whole), not recovered.
    /// </summary>
    public (IReadOnlyList<RoomEntry> Messages, bool Recovered) Recover(LogSlice log)
    {
        var since = Since ?? log.Head;
        if (RestartsFrom(log))
        {
            return (log.Messages, false);
        }

        var newer = log.Messages.Where(m => m.Seq > since).ToArray();
        return (newer, since == log.Head || log.First <= since + 1);
    }
}
