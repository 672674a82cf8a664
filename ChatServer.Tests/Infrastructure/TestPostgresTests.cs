using ChatServer.LoadTest;
using Npgsql;

namespace ChatServer.Tests.Infrastructure;

/// <summary>
/// The PostgreSQL fixture does what the history tests will lean on: the shared server answers, each fixture's database
/// starts empty and sees nothing of another's, and a server of a test's own can be stopped (connections refused) and
/// started again with its data.
/// </summary>
public sealed class TestPostgresTests
{
    [Test, CancelAfter(60_000)]
    public async Task The_shared_server_answers_and_each_created_database_is_empty_and_separate(CancellationToken cancellationToken)
    {
        var version = await ScalarAsync<string>(await TestPostgres.ConnectionStringAsync(), "select version()", cancellationToken);
        Assert.That(version, Does.StartWith("PostgreSQL "));

        var first = await TestPostgres.CreateDatabaseAsync("Fixture-One", cancellationToken);
        var second = await TestPostgres.CreateDatabaseAsync("Fixture-One", cancellationToken);
        var firstName = new NpgsqlConnectionStringBuilder(first).Database;
        var secondName = new NpgsqlConnectionStringBuilder(second).Database;
        Assert.That(firstName, Is.Not.EqualTo(secondName));
        Assert.That(firstName, Does.StartWith("fixtureone_").And.EqualTo(firstName!.ToLowerInvariant()));
        Assert.That(await ScalarAsync<string>(first, "select current_database()", cancellationToken), Is.EqualTo(firstName));

        const string Tables = "select count(*) from pg_tables where schemaname = 'public'";
        Assert.That(await ScalarAsync<long>(first, Tables, cancellationToken), Is.Zero, "a new database has no tables");

        await ExecuteAsync(first, "create table archived (id bigint primary key)", cancellationToken);

        Assert.That(await ScalarAsync<long>(first, Tables, cancellationToken), Is.EqualTo(1));
        Assert.That(await ScalarAsync<long>(second, Tables, cancellationToken), Is.Zero, "the other database does not see it");
    }

    [Test, CancelAfter(90_000)]
    public async Task A_server_of_its_own_stopped_refuses_connections_and_started_again_has_its_data(CancellationToken cancellationToken)
    {
        using var server = await PostgresServerProcess.StartAsync(cancellationToken: cancellationToken);
        await ExecuteAsync(server.ConnectionString, "create table kept (text text); insert into kept values ('before the stop')", cancellationToken);
        var pidBefore = server.ProcessId;

        await server.StopAsync();

        // A new connection, not one the pool kept from before the stop.
        var unpooled = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Pooling = false }.ConnectionString;
        Assert.That(() => ScalarAsync<int>(unpooled, "select 1", cancellationToken), Throws.InstanceOf<NpgsqlException>());
        Assert.That(server.ProcessId, Is.Zero);

        await server.StartAgainAsync(cancellationToken);

        Assert.That(server.ProcessId, Is.Not.Zero.And.Not.EqualTo(pidBefore));
        Assert.That(await ScalarAsync<string>(unpooled, "select text from kept", cancellationToken), Is.EqualTo("before the stop"));
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
