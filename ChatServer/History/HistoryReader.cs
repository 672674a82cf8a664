using System.Text;
using ChatServer.Protocol;
using ChatServer.Rooms;
using Npgsql;

namespace ChatServer.History;

/// <summary>
/// Reads a room's history as one sequence, newest to oldest across epochs (PROTOCOL.md "History that outlives Redis"):
/// the newest messages from the log (Redis or in process) where it has them, then on from the history database, with
/// no gap or duplicate at the seam (the log holds a contiguous range ending at its head, so the database continues
/// below the log's first kept <c>seq</c>). Without a database, only what the log holds.
/// </summary>
internal sealed class HistoryReader(IMessageLog log, HistoryDatabase? database = null)
{
    public const string DatabaseUnavailableError = "The history database is unavailable; older messages cannot be read now. Try again shortly.";

    public const string SearchNeedsDatabaseError = "Search needs the history database (History__ConnectionString).";

    public const string SearchUnavailableError = "The history database is unavailable; search cannot run now. Try again shortly.";

    public const string DeleteUnavailableError = "The history database is unavailable; nothing was deleted. Try again shortly.";

    public bool HasDatabase => database is not null;

    /// <summary>
    /// Up to <paramref name="limit"/> messages before (<paramref name="epoch"/>, <paramref name="before"/>), oldest
    /// first; <c>More</c> is false only when the page reached the room's first kept message. Absent epoch: the
    /// current one; absent before: from the newest. Throws <see cref="HistoryUnavailableException"/> when the page
    /// needs the database and it does not answer.
    /// </summary>
    public async Task<HistoryPage> PageAsync(string room, string? epoch, long? before, int limit, CancellationToken cancellationToken)
    {
        var want = limit + 1;   // one more than asked tells whether more remain
        var slice = before is { } position
            ? await log.ReadBeforeAsync(room, position, want, cancellationToken)
            : await log.ReadLatestAsync(room, want, cancellationToken);
        var newestFirst = new List<ReadOnlyMemory<byte>>(want);
        (string Epoch, long Before) cursor;
        if (epoch is null || epoch == slice.Epoch)
        {
            for (var i = slice.Messages.Count - 1; i >= 0; i--)
            {
                newestFirst.Add(slice.Messages[i].Json);
            }

            cursor = (slice.Epoch, Math.Min(before ?? long.MaxValue, slice.First));
        }
        else
        {
            cursor = (epoch, before ?? long.MaxValue);   // an older epoch: only the database can have it
        }

        if (newestFirst.Count < want && database is not null)
        {
            foreach (var row in await RunAsync(() => database.PageAsync(room, cursor.Epoch, cursor.Before, want - newestFirst.Count, cancellationToken)))
            {
                newestFirst.Add(Encoding.UTF8.GetBytes(row.Body));
            }
        }

        var more = newestFirst.Count > limit;
        var page = new RawJson[Math.Min(limit, newestFirst.Count)];
        for (var i = 0; i < page.Length; i++)
        {
            page[page.Length - 1 - i] = new RawJson(newestFirst[i]);
        }

        return new HistoryPage(slice.Epoch, page, more);
    }

    /// <summary>
    /// Messages of the room matching <paramref name="query"/>, newest first, up to <paramref name="limit"/>, older than
    /// (<paramref name="epoch"/>, <paramref name="before"/>) when given. Needs the database.
    /// </summary>
    public async Task<HistoryPage> SearchAsync(string room, string query, string? epoch, long? before, int limit, CancellationToken cancellationToken)
    {
        if (database is null)
        {
            throw new InvalidOperationException(SearchNeedsDatabaseError);
        }

        var current = await log.ReadLatestAsync(room, 0, cancellationToken);
        (string, long)? after = before is { } seq ? (epoch ?? current.Epoch, seq) : null;
        var rows = await RunAsync(() => database.SearchAsync(room, query, limit + 1, after, cancellationToken));
        var found = rows.Take(limit).Select(r => new RawJson(Encoding.UTF8.GetBytes(r.Body))).ToArray();
        return new HistoryPage(current.Epoch, found, rows.Count > limit);
    }

    /// <summary>
    /// One message wherever it is kept: in the log (its entry, for a compare-and-set replace) or only in the database
    /// (its JSON). <c>null</c> when neither holds it.
    /// </summary>
    public async Task<FoundMessage?> FindAsync(string room, string epoch, long seq, CancellationToken cancellationToken)
    {
        var slice = await log.ReadAfterAsync(room, seq - 1, 1, cancellationToken);
        if (slice.Epoch == epoch && slice.Messages is [var entry] && entry.Seq == seq)
        {
            return new FoundMessage(entry, null);
        }

        if (database is not null && await RunAsync(() => database.FindAsync(room, epoch, seq, cancellationToken)) is { } body)
        {
            return new FoundMessage(null, body);
        }

        return null;
    }

    /// <summary>Runs a database read; a database that cannot answer becomes <see cref="HistoryUnavailableException"/>.</summary>
    internal static async Task<T> RunAsync<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or IOException)
        {
            throw new HistoryUnavailableException(ex);
        }
    }
}

/// <summary>A page of stored <c>message</c> objects in the order the frame wants, the room's current epoch, and whether more remain.</summary>
internal sealed record HistoryPage(string Epoch, IReadOnlyList<RawJson> Messages, bool More);

/// <summary>Where a message was found: <see cref="Entry"/> in the log, or only its <see cref="Body"/> in the database.</summary>
internal sealed record FoundMessage(RoomEntry? Entry, string? Body)
{
    public ReadOnlySpan<byte> Json => Entry is { } entry ? entry.Json.Span : Encoding.UTF8.GetBytes(Body!);
}

/// <summary>The history database did not answer; the chat itself goes on.</summary>
internal sealed class HistoryUnavailableException(Exception inner) : Exception("The history database did not answer.", inner);
