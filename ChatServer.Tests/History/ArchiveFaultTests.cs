using ChatServer.LoadTest;
using Npgsql;

namespace ChatServer.Tests.History;

/// <summary>
/// The holes the archive's queue leaves, and how they close: an instance killed after its acks, a database stopped
/// while messages flow, and retention that removes only what is older.
/// </summary>
public sealed class ArchiveFaultTests : HistoryDatabaseFixture
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["History:Retention"] = "1.00:00:00",
        ["History:RetentionInterval"] = "00:00:01",
    };

    [Test, CancelAfter(90_000)]
    public async Task Messages_acked_by_an_instance_killed_before_it_archived_them_are_reconciled_from_Redis(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();

        // The doomed instance cannot reach the database at all, so nothing it acks is archived by itself.
        using var doomed = await ChatProcess.StartAsync(TestRedis.ConnectionString, cancellationToken, new Dictionary<string, string>
        {
            ["History__ConnectionString"] = $"Host=127.0.0.1;Port={RedisServerProcess.FreePort()};Username=postgres;Timeout=2",
            ["Redis__KeyPrefix"] = KeyPrefix,
            ["Chat__HistoryLength"] = "1000",
        });
        await using (var alice = await ChatClient.SignInAsync(doomed.WebSocketUri, "alice", room, cancellationToken))
        {
            for (var i = 1; i <= 30; i++)
            {
                Assert.That((await alice.RequestAsync(new { type = "sendMessage", text = $"m{i}" }, cancellationToken)).Ok, Is.True);
            }

            doomed.Kill();   // SIGKILL right after the acks
        }

        await WaitUntilAsync(async () => await ArchivedCountAsync(room) == 30, cancellationToken);
        Assert.That(await ScalarAsync<long>("select max(seq) from chat_messages where room = $1", room), Is.EqualTo(30));
        Assert.That(HostA.Logs.Contains("Reconciler copied") || HostB.Logs.Contains("Reconciler copied"), Is.True);
    }

    [Test, CancelAfter(120_000)]
    public async Task With_the_database_stopped_the_chat_goes_on_the_lag_shows_and_nothing_Redis_holds_is_lost(CancellationToken cancellationToken)
    {
        using var postgres = await PostgresServerProcess.StartAsync(cancellationToken: cancellationToken);
        var database = await PostgresServerProcess.CreateDatabaseAsync(postgres.ConnectionString, "outage", cancellationToken);
        var settings = new Dictionary<string, string?>
        {
            ["History:ConnectionString"] = database,
            ["History:ReconcileInterval"] = "00:00:00.5",
            ["History:LagWarning"] = "00:00:01",
            ["History:QueueCapacity"] = "10",   // the outage overflows it: the reconciler must fill in the rest
            ["Redis:KeyPrefix"] = $"o{Guid.NewGuid():N}:",
            ["Chat:HistoryLength"] = "1000",
        };
        await using var hostA = new ChatHost(TestRedis.ConnectionString, settings);
        await using var hostB = new ChatHost(TestRedis.ConnectionString, settings);
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken);
        long sent = 0;
        async Task SendAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var sender = i % 2 == 0 ? alice : bob;
                var ack = await sender.RequestAsync(new { type = "sendMessage", text = $"n{sent + 1}" }, cancellationToken);
                Assert.That(ack.Ok, Is.True, ack.Raw);
                sent++;
            }
        }

        await SendAsync(20);
        await WaitUntilAsync(async () => await CountAsync(database, room) == 20, cancellationToken);

        await postgres.StopAsync();
        await SendAsync(60);
        using (var http = hostA.CreateHttpClient())
        {
            Assert.That((int)(await http.GetAsync("/readyz", cancellationToken)).StatusCode, Is.EqualTo(200), "the chat works");
        }

        await WaitUntilAsync(() => Task.FromResult(hostA.Logs.Contains("Archive lag") && hostB.Logs.Contains("Archive lag")), cancellationToken);

        await postgres.StartAgainAsync(cancellationToken);
        await WaitUntilAsync(async () => await CountAsync(database, room) == sent, cancellationToken);
        Assert.That(await ScalarOnAsync<long>(database, "select count(distinct seq) from chat_messages where room = $1", room), Is.EqualTo(80));
        await WaitUntilAsync(() => Task.FromResult(hostA.Logs.Contains("Archive caught up")), cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task An_instance_that_stops_writes_what_it_still_holds_before_it_exits(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var settings = HostSettings(Database);
        settings["History:BatchDelay"] = "00:00:01";        // its messages are still queued when it is told to stop
        settings["History:ReconcileInterval"] = "01:00:00"; // and no reconciler pass comes after the first one
        var host = new ChatHost(TestRedis.ConnectionString, settings);
        await using (var alice = await ChatClient.SignInAsync(host.WebSocketUri, "alice", room, cancellationToken))
        {
            for (var i = 1; i <= 5; i++)
            {
                await alice.RequestAsync(new { type = "sendMessage", text = $"last words {i}" }, cancellationToken);
            }
        }

        await host.DisposeAsync();   // a graceful stop, as on a deploy

        Assert.That(await ArchivedCountAsync(room), Is.EqualTo(5));
    }

    [Test, CancelAfter(60_000)]
    public async Task Retention_removes_only_what_is_older(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        await WaitUntilAsync(async () => await ScalarAsync<bool>("select to_regclass('chat_messages') is not null"), cancellationToken);
        await using (var connection = new NpgsqlConnection(Database))
        {
            await connection.OpenAsync(cancellationToken);
            await using var old = new NpgsqlCommand("""
                with epoch as (insert into chat_epochs (room, epoch, started) values ($1, 'oldepoch00', now() - interval '3 days'))
                insert into chat_messages (room, epoch, seq, user_name, ts, body, text)
                select $1, 'oldepoch00', s, 'alice', now() - interval '3 days' + s * interval '1 second', '{"type":"message"}', 'old'
                from generate_series(1, 50) s;
                """, connection);
            old.Parameters.Add(new NpgsqlParameter { Value = room });
            await old.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var alice = await ChatClient.SignInAsync(HostA.WebSocketUri, "alice", room, cancellationToken);
        for (var i = 0; i < 3; i++)
        {
            await alice.RequestAsync(new { type = "sendMessage", text = "recent" }, cancellationToken);
        }

        await WaitUntilAsync(async () => await ScalarAsync<long>("select count(*) from chat_messages where room = $1 and text = 'old'", room) == 0,
            cancellationToken);
        await WaitUntilAsync(async () => await ArchivedCountAsync(room) == 3, cancellationToken);
        // The emptied epoch goes too (the same pass, right after its messages).
        await WaitUntilAsync(async () => await ScalarAsync<long>("select count(*) from chat_epochs where room = $1 and epoch = 'oldepoch00'", room) == 0,
            cancellationToken);
        Assert.That(await ArchivedCountAsync(room), Is.EqualTo(3), "the recent messages stay");
    }

    private static Task<long> CountAsync(string database, string room) =>
        ScalarOnAsync<long>(database, "select count(*) from chat_messages where room = $1", room);

    private static async Task<T> ScalarOnAsync<T>(string database, string sql, string room)
    {
        try
        {
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = room });
            return (T)(await command.ExecuteScalarAsync())!;
        }
        catch (NpgsqlException)
        {
            return default!;   // the database is still starting: not there yet
        }
    }
}
