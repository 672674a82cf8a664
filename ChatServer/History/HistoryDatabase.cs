using System.Text;
using Npgsql;
using ChatServer.Rooms;
using NpgsqlTypes;

namespace ChatServer.History;

/// <summary>
/// Every SQL statement of the history database, in one place. A message is one row keyed by (room, epoch, seq), so a
/// write that is repeated (a retry, the reconciler, two instances) stores it once; its <c>body</c> is the exact
/// <c>message</c> JSON clients get, so a page read from here is byte for byte what Redis held. Epochs are ordered by
/// when their first message was stored (<c>chat_epochs.started</c>): a room's epochs follow one another in time, each
/// starting when the store lost the previous one.
/// </summary>
internal sealed class HistoryDatabase(NpgsqlDataSource dataSource, ILogger<HistoryDatabase> logger)
{
    /// <summary>The schema's version; <see cref="EnsureSchemaAsync"/> brings an older database up to it.</summary>
    private const int SchemaVersion = 1;

    // Any instance may start first, and several at once: the advisory lock makes the migration run once at a time.
    private const string Migration = """
        select pg_advisory_xact_lock(7423110522);
        create table if not exists chat_schema (version int not null);
        create table if not exists chat_messages (
          room text not null,
          epoch text not null,
          seq bigint not null,
          user_name text not null,
          ts timestamptz not null,
          body text not null,
          text text,
          deleted boolean not null default false,
          tsv tsvector generated always as (to_tsvector('simple', coalesce(text, ''))) stored,
          primary key (room, epoch, seq)
        );
        -- no pending list: merging it stalls whichever archive write fills it
        create index if not exists chat_messages_search on chat_messages using gin (tsv) with (fastupdate = off);
        create index if not exists chat_messages_newest on chat_messages (room, ts desc, epoch desc, seq desc);
        create index if not exists chat_messages_ts on chat_messages (ts);
        create index if not exists chat_messages_user on chat_messages (user_name, room, epoch, seq) where not deleted;
        create table if not exists chat_epochs (
          room text not null,
          epoch text not null,
          started timestamptz not null,
          primary key (room, epoch)
        );
        insert into chat_schema (version) select 1 where not exists (select 1 from chat_schema);
        """;

    // One round trip per batch. A tombstone wins over the message it replaces, whichever arrives first; a message never
    // overwrites a tombstone. The epoch's start moves earlier when an older message of it arrives late (reconciled).
    private const string Insert = """
        with rows as (
          select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::boolean[])
            as r(room, epoch, seq, user_name, ts, body, text, deleted)
        ), epochs as (
          insert into chat_epochs as e (room, epoch, started)
          select room, epoch, min(ts) from rows group by room, epoch
          on conflict (room, epoch) do update set started = excluded.started where excluded.started < e.started
        )
        insert into chat_messages as m (room, epoch, seq, user_name, ts, body, text, deleted)
        select room, epoch, seq, user_name, ts, body, text, deleted from rows
        on conflict (room, epoch, seq) do update set body = excluded.body, text = null, deleted = true
          where excluded.deleted and not m.deleted
        """;

    private readonly Lock _schemaSync = new();
    private Task? _schema;

    /// <summary>
    /// Creates or migrates the schema once per process, before the first statement that needs it: the database may be
    /// down when the instance starts, and the chat does not wait for it. A failed attempt is tried again next time.
    /// </summary>
    public Task EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        lock (_schemaSync)
        {
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = MigrateAsync(CancellationToken.None);
            }

            return _schema.WaitAsync(cancellationToken);
        }
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var migrate = new NpgsqlCommand(Migration, connection, transaction))
        {
            await migrate.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var version = new NpgsqlCommand("select max(version) from chat_schema", connection, transaction))
        {
            var found = (int)(await version.ExecuteScalarAsync(cancellationToken))!;
            if (found > SchemaVersion)
            {
                throw new InvalidOperationException(
                    $"The history database has schema version {found}; this server knows up to {SchemaVersion}. Run a newer server.");
            }
        }

        await transaction.CommitAsync(cancellationToken);
        HistoryLog.SchemaReady(logger, SchemaVersion);
    }

    /// <summary>Stores messages and tombstones; repeats are harmless. Within one call each (room, epoch, seq) appears once.</summary>
    public async Task WriteAsync(IReadOnlyList<ArchivedMessage> messages, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        var n = messages.Count;
        var (rooms, epochs, seqs, users, times, bodies, texts, deleted) =
            (new string[n], new string[n], new long[n], new string[n], new DateTime[n], new string[n], new string?[n], new bool[n]);
        for (var i = 0; i < n; i++)
        {
            var m = messages[i];
            (rooms[i], epochs[i], seqs[i], users[i], times[i], bodies[i], texts[i], deleted[i]) =
                (m.Room, m.Epoch, m.Seq, m.User, m.StoredAt, m.Body, m.Text, m.Deleted);
        }

        await using var command = dataSource.CreateCommand(Insert);
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = rooms });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = epochs });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = seqs });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = users });
        command.Parameters.Add(new NpgsqlParameter<DateTime[]> { TypedValue = times, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = bodies });
        command.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = texts });
        command.Parameters.Add(new NpgsqlParameter<bool[]> { TypedValue = deleted });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// For each room's kept range (<paramref name="spans"/>), how many of its messages the database holds: fewer than
    /// the range's length means some are missing. One round trip for them all.
    /// </summary>
    public async Task<long[]> CountArchivedAsync(IReadOnlyList<RoomSpan> spans, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        await using var command = dataSource.CreateCommand("""
            select (select count(*) from chat_messages m where m.room = r.room and m.epoch = r.epoch and m.seq between r.first and r.head)
            from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) with ordinality as r(room, epoch, first, head, i)
            order by r.i
            """);
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. spans.Select(s => s.Room)] });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. spans.Select(s => s.Epoch)] });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. spans.Select(s => s.First)] });
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. spans.Select(s => s.Head)] });
        var counts = new long[spans.Count];
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        for (var i = 0; await reader.ReadAsync(cancellationToken); i++)
        {
            counts[i] = reader.GetInt64(0);
        }

        return counts;
    }

    /// <summary>
    /// Up to <paramref name="limit"/> messages of <paramref name="room"/> before (<paramref name="epoch"/>,
    /// <paramref name="before"/>), newest first, going on into older epochs. An epoch the database has not seen yet
    /// (nothing of it archived) counts as the newest.
    /// </summary>
    public async Task<List<HistoryRow>> PageAsync(string room, string epoch, long before, int limit, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        var rows = new List<HistoryRow>(limit);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        string? current = epoch;
        var bound = before;
        while (current is not null && rows.Count < limit)
        {
            await using (var page = new NpgsqlCommand(
                "select seq, body from chat_messages where room = $1 and epoch = $2 and seq < $3 order by seq desc limit $4", connection))
            {
                page.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
                page.Parameters.Add(new NpgsqlParameter<string> { TypedValue = current });
                page.Parameters.Add(new NpgsqlParameter<long> { TypedValue = bound });
                page.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit - rows.Count });
                await using var reader = await page.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    rows.Add(new HistoryRow(current, reader.GetInt64(0), reader.GetString(1)));
                }
            }

            if (rows.Count < limit)
            {
                current = await PreviousEpochAsync(connection, room, current, cancellationToken);
                bound = long.MaxValue;
            }
        }

        return rows;
    }

    private static async Task<string?> PreviousEpochAsync(NpgsqlConnection connection, string room, string epoch, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            select epoch from chat_epochs
            where room = $1 and epoch <> $2
              and (started, epoch) < coalesce((select (started, epoch) from chat_epochs where room = $1 and epoch = $2), ('infinity'::timestamptz, ''))
            order by started desc, epoch desc limit 1
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = epoch });
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>
    /// Messages of <paramref name="room"/> whose text matches the words of <paramref name="query"/>, newest first, up to
    /// <paramref name="limit"/>; with <paramref name="after"/>, only those older than that message. Tombstones never match.
    /// </summary>
    public async Task<List<HistoryRow>> SearchAsync(string room, string query, int limit, (string Epoch, long Seq)? after,
        CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        var sql = new StringBuilder("""
            select epoch, seq, body from chat_messages
            where room = $1 and not deleted and tsv @@ websearch_to_tsquery('simple', $2)
            """);
        if (after is not null)
        {
            sql.Append(" and (ts, epoch, seq) < (select ts, epoch, seq from chat_messages where room = $1 and epoch = $4 and seq = $5)");
        }

        sql.Append(" order by ts desc, epoch desc, seq desc limit $3");
        await using var command = dataSource.CreateCommand(sql.ToString());
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = query });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        if (after is { } position)
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = position.Epoch });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = position.Seq });
        }

        var rows = new List<HistoryRow>(limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new HistoryRow(reader.GetString(0), reader.GetInt64(1), reader.GetString(2)));
        }

        return rows;
    }

    /// <summary>
    /// Up to <paramref name="limit"/> messages of <paramref name="user"/> that are not tombstones yet, in (room, epoch,
    /// seq) order after <paramref name="after"/> when given: an erasure reads them in batches and writes their
    /// tombstones (<see cref="WriteAsync"/>). The partial index <c>chat_messages_user</c> holds only such messages.
    /// </summary>
    public async Task<List<(string Room, HistoryRow Row)>> UserMessagesAsync(string user, (string Room, string Epoch, long Seq)? after, int limit,
        CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        await using var command = dataSource.CreateCommand(after is null
            ? "select room, epoch, seq, body from chat_messages where user_name = $1 and not deleted order by room, epoch, seq limit $2"
            : """
              select room, epoch, seq, body from chat_messages where user_name = $1 and not deleted and (room, epoch, seq) > ($3, $4, $5)
              order by room, epoch, seq limit $2
              """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = user });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        if (after is { } position)
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = position.Room });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = position.Epoch });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = position.Seq });
        }

        var rows = new List<(string, HistoryRow)>(limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add((reader.GetString(0), new HistoryRow(reader.GetString(1), reader.GetInt64(2), reader.GetString(3))));
        }

        return rows;
    }

    /// <summary>One stored message's JSON, or <c>null</c> when the database does not hold it.</summary>
    public async Task<string?> FindAsync(string room, string epoch, long seq, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        await using var command = dataSource.CreateCommand("select body from chat_messages where room = $1 and epoch = $2 and seq = $3");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = epoch });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = seq });
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>
    /// Deletes messages stored before <paramref name="cutoff"/>, <paramref name="batch"/> rows per statement so no lock
    /// is held long, then the epochs left empty. Returns how many messages went.
    /// </summary>
    public async Task<long> DeleteOlderThanAsync(DateTime cutoff, int batch, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        long total = 0;
        while (true)
        {
            await using var command = dataSource.CreateCommand(
                "delete from chat_messages where ctid = any(array(select ctid from chat_messages where ts < $1 limit $2))");
            command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = cutoff, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = batch });
            var deleted = await command.ExecuteNonQueryAsync(cancellationToken);
            total += deleted;
            if (deleted < batch)
            {
                break;
            }
        }

        await using var epochs = dataSource.CreateCommand("""
            delete from chat_epochs e where e.started < $1
              and not exists (select 1 from chat_messages m where m.room = e.room and m.epoch = e.epoch)
            """);
        epochs.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = cutoff, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await epochs.ExecuteNonQueryAsync(cancellationToken);
        return total;
    }

    /// <summary>
    /// Runs <paramref name="work"/> if no other instance is running work under the same <paramref name="lockId"/>
    /// (a PostgreSQL advisory lock held by one connection for the duration); false when another one is.
    /// </summary>
    public async Task<bool> RunAloneAsync(long lockId, Func<Task> work, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var take = new NpgsqlCommand("select pg_try_advisory_lock($1)", connection))
        {
            take.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lockId });
            if (await take.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return false;
            }
        }

        try
        {
            await work();
            return true;
        }
        finally
        {
            await using var release = new NpgsqlCommand("select pg_advisory_unlock($1)", connection);
            release.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lockId });
            await release.ExecuteScalarAsync(CancellationToken.None);
        }
    }
}

/// <summary>One message as the database returns it: where it is, and its JSON.</summary>
internal readonly record struct HistoryRow(string Epoch, long Seq, string Body);
