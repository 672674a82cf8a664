namespace ChatServer.Rooms;

/// <summary>
/// A room's stored state read in one atomic step: its <see cref="Epoch"/>, the last <see cref="Seq"/> handed out, and
/// the stored messages, oldest first (contiguous <c>seq</c> values ending at <see cref="Seq"/>, or empty).
/// </summary>
internal sealed record RoomHistory(string Epoch, long Seq, IReadOnlyList<RoomEntry> Messages)
{
    /// <summary>
    /// PROTOCOL.md, <c>updateSocketId</c>: the messages after <paramref name="since"/>, and whether they are all of
    /// them. An unknown epoch, or a <paramref name="since"/> beyond the current seq, means the history restarted: the
    /// whole current history, not recovered.
    /// </summary>
    public (IReadOnlyList<RoomEntry> Messages, bool Recovered) Since(long since, string? epoch)
    {
        if ((epoch is not null && !string.Equals(epoch, Epoch, StringComparison.Ordinal)) || since > Seq)
        {
            return (Messages, false);
        }

        var newer = Messages.Where(m => m.Seq > since).ToArray();
        var missedNone = since == Seq;
        var firstKept = Messages.Count > 0 ? Messages[0].Seq : Seq + 1;
        return (newer, missedNone || firstKept <= since + 1);
    }
}
