using System.Diagnostics;
using System.Text;
using Npgsql;

namespace ChatServer.LoadTest;

internal sealed record HistoryDbSettings(Uri Url, string DatabaseConnectionString, int Messages, int Samples, double PauseMs = 20, int Seed = 42);

/// <summary>
/// History and search from PostgreSQL at scale (<c>historydb</c>): one room is seeded with <c>Messages</c> messages of
/// one epoch directly in SQL (the server's tables, created by the server at start; bodies are the exact
/// <c>message</c> JSON the server stores), the tables are vacuumed and analyzed as autovacuum would after a bulk load,
/// and one connection signed in to the room times, one request at a time (each after a pause longer than the server's
/// write-delay window) and interleaved: a <c>history</c> page of 50
/// at a random <c>before</c> with the seeded epoch (Redis holds nothing of that epoch, so the page is the database's),
/// and <c>search</c> for a common word, a rare one, a very rare one and two words. Each ack is checked for the number of
/// messages it should carry. The server's statements are then run under <c>EXPLAIN (ANALYZE, BUFFERS)</c> for the plans.
/// </summary>
/// <remarks>
/// The texts are 3 to 12 words: 85 % from a list of 150 chat words with a steep skew (the first, "the", is in about
/// 70 % of messages), 15 % from a long tail of 20,000 tokens (<c>x0</c>…<c>x19999</c>: names, numbers, typos), as real
/// chat has; "zeppelin" is added to about 1 message in 5,000 and "quokka" to exactly 5. The tail matters to the
/// planner: with a closed vocabulary every word missing from the statistics is estimated at 0.5 % of the rows.
/// </remarks>
internal sealed class HistoryDbRunner(HistoryDbSettings settings, TextWriter progress)
{
    private const int Warmup = 20;
    private const int PageSize = 50;
    private const int SearchLimit = 20;

    private const string Words =
        "the to and a i you it is of in that we for on this be have are not with just so but can do at was what if like me my get it's " +
        "think will all need one know about now up from out then there they time how see yeah ok good new go make check build test " +
        "deploy release friday monday meeting review merge branch issue bug fix code server client database query index page search " +
        "message room user chat team lunch coffee weekend today tomorrow later soon thanks please sorry great nice cool sure maybe " +
        "right wrong late early fast slow green red blue broken working done ready waiting looking trying running starting stopping " +
        "failing passing logs metrics alert incident outage rollback staging production config secret token cache redis postgres " +
        "docker cluster node pod memory cpu latency throughput budget roadmap sprint ticket estimate design spec doc draft comment " +
        "question answer idea plan goal";

    // $1 room, $2 epoch, $3 count, $4 the word list. One row per second, ending a day ago; the body is the server's
    // compact message JSON (MessageEncoding + RoomEntry: type, room, user, text, ts, seq, epoch). The aggregate's
    // argument names k so that it is evaluated per word, not once.
    private const string Seed = """
        insert into chat_messages (room, epoch, seq, user_name, ts, body, text)
        select $1, $2, g, u, ts,
          '{"type":"message","room":' || to_json($1::text)::text || ',"user":"' || u || '","text":' || to_json(txt)::text
            || ',"ts":"' || to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '","seq":' || g
            || ',"epoch":' || to_json($2::text)::text || '}',
          txt
        from (select now() - interval '1 day' - make_interval(secs => $3) as base, string_to_array($4, ' ') as words) s
        cross join generate_series(1, $3) g
        cross join lateral (select 'user' || (g % 37) as u, s.base + g * interval '1 second' as ts) a
        cross join lateral (
          select string_agg(case when random() < 0.85 then s.words[1 + floor(power(random(), 3) * array_length(s.words, 1))::int]
                                 else 'x' || floor(power(random(), 2) * 20000)::int + 0 * k end, ' ')
                 || case when random() < 0.0002 then ' zeppelin' else '' end
                 || case when g % ($3 / 6) = 0 and g <= 5 * ($3 / 6) then ' quokka' else '' end as txt
          from generate_series(1, 3 + (g::bigint * 7919) % 10) k) t
        """;

    // The server's statements (ChatServer/History/HistoryDatabase.cs, PageAsync and SearchAsync), for EXPLAIN.
    private const string PageSql = "select seq, body from chat_messages where room = $1 and epoch = $2 and seq < $3 order by seq desc limit $4";

    private const string SearchSql = """
        select epoch, seq, body from chat_messages
        where room = $1 and not deleted and tsv @@ websearch_to_tsquery('simple', $2)
        order by ts desc, epoch desc, seq desc limit $3
        """;

    public async Task<HistoryDbResult> RunAsync(CancellationToken cancellationToken)
    {
        var room = $"lt-historydb-{Guid.NewGuid():N}"[..24];
        var epoch = Guid.NewGuid().ToString("N")[..12];
        await using var dataSource = new NpgsqlDataSourceBuilder(settings.DatabaseConnectionString).Build();
        await WaitForSchemaAsync(dataSource, cancellationToken);

        var clock = Stopwatch.StartNew();
        await progress.WriteLineAsync($"historydb: seeding {settings.Messages} messages into room {room}, epoch {epoch} (one INSERT … SELECT)");
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            await ExecuteAsync(connection, "select setseed(0.42)", [], cancellationToken);
            await ExecuteAsync(connection, Seed, [room, epoch, settings.Messages, Words], cancellationToken);
            await ExecuteAsync(connection, "insert into chat_epochs (room, epoch, started) select $1, $2, min(ts) from chat_messages where room = $1 and epoch = $2",
                [room, epoch], cancellationToken);
        }

        var seedSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            await ExecuteAsync(connection, "vacuum analyze chat_messages", [], cancellationToken);
            await ExecuteAsync(connection, "vacuum analyze chat_epochs", [], cancellationToken);
        }

        var analyzeSeconds = clock.Elapsed.TotalSeconds;
        await progress.WriteLineAsync($"historydb: seeded in {seedSeconds:F1} s, VACUUM ANALYZE in {analyzeSeconds:F1} s");

        using var client = new HistoryRunner.Client();
        await client.ConnectAsync(settings.Url, cancellationToken);
        // The control: 100 messages (the default HistoryLength) in the room's current epoch, which Redis holds, so the
        // newest page of 50 is Redis's alone, the same request path without the database.
        var (current, _) = await client.FillAsync(room, 100, cancellationToken);

        var random = new Random(settings.Seed);
        var kinds = new List<Kind>
        {
            new("control: newest page of 50, from Redis (no database)", PageSize, 100, $$"""{"type":"history","limit":{{PageSize}}""", null),
            new("history page of 50 at a random before, from PostgreSQL", PageSize, settings.Messages, null, () =>
            {
                var before = random.Next(PageSize + 1, settings.Messages + 2);
                return ($$"""{"type":"history","limit":{{PageSize}},"before":{{before}},"epoch":"{{epoch}}" """,
                    PageSql, [room, epoch, (long)before, PageSize + 1]);
            }),
        };
        foreach (var (name, query) in new[]
                 {
                     ("search: common word", "the"), ("search: rare word", "zeppelin"), ("search: very rare word", "quokka"),
                     ("search: two words", "deploy friday"),
                 })
        {
            var matches = await CountMatchesAsync(dataSource, room, query, cancellationToken);
            kinds.Add(new($"{name} \"{query}\"", (int)Math.Min(SearchLimit, matches), matches, null,
                () => ($$"""{"type":"search","q":"{{query}}","limit":{{SearchLimit}}""", SearchSql, [room, query, SearchLimit + 1])));
        }

        await progress.WriteLineAsync($"historydb: room {room} (current epoch {current}, 100 messages in Redis); {Warmup} unmeasured and " +
            $"{settings.Samples} timed round trips of each, interleaved, {settings.PauseMs:F0} ms apart; then each statement {settings.Samples} times from here, straight to PostgreSQL");
        for (var i = -Warmup; i < settings.Samples; i++)
        {
            foreach (var kind in kinds)
            {
                if (settings.PauseMs > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(settings.PauseMs), cancellationToken);
                }

                var elapsed = await client.TimeAsync(kind.Next().Request, kind.Expected, cancellationToken);
                if (i >= 0)
                {
                    kind.Samples.Add(elapsed);
                }
            }
        }

        var results = new List<HistoryDbKind>();
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        {
            for (var i = -Warmup; i < settings.Samples; i++)
            {
                foreach (var kind in kinds.Where(k => k.HasStatement))
                {
                    var (_, sql, parameters) = kind.Next();
                    var elapsed = await TimeStatementAsync(connection, sql!, parameters!, cancellationToken);
                    if (i >= 0)
                    {
                        kind.DatabaseSamples.Add(elapsed);
                    }
                }
            }

            foreach (var kind in kinds)
            {
                // The page's plan at the middle of the room; a search's as the server runs it.
                string? plan = null;
                if (kind == kinds[1])
                {
                    plan = await ExplainAsync(connection, PageSql, [room, epoch, (long)(settings.Messages / 2), PageSize + 1], cancellationToken);
                }
                else if (kind.HasStatement)
                {
                    var (_, sql, parameters) = kind.Next();
                    plan = await ExplainAsync(connection, sql!, parameters!, cancellationToken);
                }

                results.Add(new HistoryDbKind(kind.Name, kind.Matches, Summary.Of(kind.Samples),
                    kind.DatabaseSamples.Count > 0 ? Summary.Of(kind.DatabaseSamples) : null, plan is null ? null : ExecutionMs(plan), plan));
            }
        }

        return new HistoryDbResult(settings.Messages, seedSeconds, analyzeSeconds, settings.Samples, settings.PauseMs, results);
    }

    /// <summary>The server creates its tables at start (its schema, not a copy of it here); wait until they exist.</summary>
    private static async Task WaitForSchemaAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            await using var command = dataSource.CreateCommand(
                "select to_regclass('chat_messages') is not null and to_regclass('chat_epochs') is not null");
            if (await command.ExecuteScalarAsync(cancellationToken) is true)
            {
                return;
            }

            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException("The server did not create its history tables within 30 s.");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task<long> CountMatchesAsync(NpgsqlDataSource dataSource, string room, string query, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "select count(*) from chat_messages where room = $1 and not deleted and tsv @@ websearch_to_tsquery('simple', $2)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = query });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, object[] parameters, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Milliseconds to run <paramref name="sql"/> and read every row, on an open connection from here.</summary>
    private static async Task<double> TimeStatementAsync(NpgsqlConnection connection, string sql, object[] parameters, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            _ = reader.GetString(reader.FieldCount - 1);
        }

        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static async Task<string> ExplainAsync(NpgsqlConnection connection, string sql, object[] parameters, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"explain (analyze, buffers) {sql}", connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        var plan = new StringBuilder();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            plan.AppendLine(reader.GetString(0));
        }

        return plan.ToString().TrimEnd();
    }

    /// <summary>The "Execution Time: … ms" line of a plan.</summary>
    private static double? ExecutionMs(string plan)
    {
        const string Label = "Execution Time: ";
        var at = plan.IndexOf(Label, StringComparison.Ordinal);
        return at < 0 ? null : double.Parse(plan.AsSpan(at + Label.Length).TrimEnd().TrimEnd("ms").Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// One kind of request: a fixed one (the control), or one made afresh for each round trip with the server's
    /// statement behind it (a random <c>before</c> for pages), which is also timed straight against PostgreSQL.
    /// </summary>
    private sealed class Kind(string name, int expected, long matches, string? fixedRequest,
        Func<(string Request, string Sql, object[] Parameters)>? statement)
    {
        public string Name => name;

        public int Expected => expected;

        public long Matches => matches;

        public bool HasStatement => statement is not null;

        public List<double> Samples { get; } = [];

        public List<double> DatabaseSamples { get; } = [];

        public (string Request, string? Sql, object[]? Parameters) Next() => statement is { } make ? make() : (fixedRequest!, null, null);
    }
}

internal sealed record HistoryDbResult(int Messages, double SeedSeconds, double AnalyzeSeconds, int Samples, double PauseMs, List<HistoryDbKind> Kinds);

/// <summary>One kind of request: how many messages of the room match it, its round trips, and the plan of its statement.</summary>
internal sealed record HistoryDbKind(string Name, long Matches, Summary Timing, Summary? DatabaseTiming, double? ExecutionMs, string? Plan);
