using System.Globalization;
using Npgsql;

namespace ChatServer.LoadTest;

/// <summary>
/// The PostgreSQL the servers' history goes to (<c>--start-postgres</c> or <c>--history-db</c>): a fresh database per
/// use (<see cref="CreateDatabaseAsync"/>), so no run sees another's rows, and where PostgreSQL's processes are, to bill
/// their CPU. Databases made on a <c>--history-db</c> server are dropped at the end; a throwaway server goes whole.
/// </summary>
internal sealed class HistoryDatabases(string adminConnectionString, int? postmasterProcessId, bool dropAtEnd, TextWriter log) : IAsyncDisposable
{
    private readonly List<string> _created = [];
    private int? _postmaster = postmasterProcessId;
    private bool _postmasterLookedUp = postmasterProcessId is not null;

    /// <summary>Creates an empty database and returns its connection string (the admin one, naming it).</summary>
    public async Task<string> CreateDatabaseAsync(string purpose, CancellationToken cancellationToken)
    {
        var name = $"chat_loadtest_{purpose}_{Guid.NewGuid():N}";
        name = name[..Math.Min(name.Length, 63)];   // PostgreSQL's identifier limit
        await using (var connection = new NpgsqlConnection(adminConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var create = new NpgsqlCommand($"create database \"{name}\"", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        _created.Add(name);
        await log.WriteLineAsync($"history database {name} created");
        return new NpgsqlConnectionStringBuilder(adminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>
    /// The postmaster's process id: known for <c>--start-postgres</c>; for <c>--history-db</c>, the parent of this
    /// connection's backend (<c>pg_backend_pid()</c>) when that server runs on this machine, else null (no CPU figure).
    /// </summary>
    public async Task<int?> PostmasterProcessIdAsync(CancellationToken cancellationToken)
    {
        if (_postmasterLookedUp)
        {
            return _postmaster;
        }

        _postmasterLookedUp = true;
        try
        {
            await using var connection = new NpgsqlConnection(adminConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("select pg_backend_pid()", connection);
            var backend = (int)(await command.ExecuteScalarAsync(cancellationToken))!;
            var stat = await File.ReadAllTextAsync($"/proc/{backend}/stat", cancellationToken);
            var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
            if ((await File.ReadAllTextAsync($"/proc/{parent}/comm", cancellationToken)).Trim() == "postgres")
            {
                _postmaster = parent;
            }
        }
        catch (IOException)
        {
            // not on this machine (or in another pid namespace): no CPU figure for PostgreSQL
        }

        await log.WriteLineAsync(_postmaster is { } pid
            ? $"PostgreSQL's postmaster is pid {pid}: its CPU and its backends' are read from /proc"
            : "PostgreSQL does not run on this machine (or is not visible): no CPU figure for it");
        return _postmaster;
    }

    public async ValueTask DisposeAsync()
    {
        if (!dropAtEnd)
        {
            return;
        }

        foreach (var name in _created)
        {
            try
            {
                await using var connection = new NpgsqlConnection(adminConnectionString);
                await connection.OpenAsync();
                await using var drop = new NpgsqlCommand($"drop database if exists \"{name}\" with (force)", connection);
                await drop.ExecuteNonQueryAsync();
            }
            catch (NpgsqlException ex)
            {
                await log.WriteLineAsync($"could not drop history database {name}: {ex.Message}");
            }
        }
    }

    /// <summary>Messages of the rooms whose names start with <paramref name="roomPrefix"/> that the database holds.</summary>
    public static async Task<long> CountAsync(string connectionString, string roomPrefix, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("select count(*) from chat_messages where starts_with(room, $1)", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = roomPrefix });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }
}
