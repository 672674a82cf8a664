using Npgsql;

namespace ChatServer.Tests.History;

/// <summary>
/// Two instances on the shared test Redis and one fresh PostgreSQL database of their own. Their Redis keys carry a
/// prefix of their own too, so the reconciler (which scans every room of its prefix) sees only this fixture's rooms.
/// </summary>
public abstract class HistoryDatabaseFixture
{
    protected ChatHost HostA { get; private set; } = null!;

    protected ChatHost HostB { get; private set; } = null!;

    protected string Database { get; private set; } = "";

    protected string KeyPrefix { get; } = $"h{Guid.NewGuid():N}:";

    /// <summary>Settings for both hosts beyond the database and the prefix.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>();

    [OneTimeSetUp]
    public async Task StartHostsAsync()
    {
        Database = await TestPostgres.CreateDatabaseAsync("history");
        HostA = new ChatHost(TestRedis.ConnectionString, HostSettings(Database));
        HostB = new ChatHost(TestRedis.ConnectionString, HostSettings(Database));
    }

    [OneTimeTearDown]
    public async Task StopHostsAsync()
    {
        await HostB.DisposeAsync();
        await HostA.DisposeAsync();
    }

    protected Dictionary<string, string?> HostSettings(string database) => new(Settings)
    {
        ["History:ConnectionString"] = database,
        ["History:ReconcileInterval"] = "00:00:00.5",
        ["Redis:KeyPrefix"] = KeyPrefix,
    };

    /// <summary>One scalar from this fixture's database.</summary>
    protected async Task<T> ScalarAsync<T>(string sql, params object[] parameters)
    {
        await using var connection = new NpgsqlConnection(Database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>How many messages (tombstones included) of <paramref name="room"/> the database holds.</summary>
    protected Task<long> ArchivedCountAsync(string room) =>
        ScalarAsync<long>("select count(*) from chat_messages where room = $1", room);

    /// <summary>Polls until <paramref name="condition"/> holds; the database is written behind the chat, so there is no event to wait for.</summary>
    protected static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        while (!await condition())
        {
            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Pages <c>history</c> from the newest message back to the first, <paramref name="limit"/> at a time; returns every message oldest first.</summary>
    protected static async Task<List<Frame>> PageEverythingAsync(ChatClient client, int limit, CancellationToken cancellationToken)
    {
        var all = new List<Frame>();
        var page = await client.RequestAsync(new { type = "history", limit }, cancellationToken);
        while (true)
        {
            Assert.That(page.Ok, Is.True, page.Raw);
            all.InsertRange(0, page.Messages);
            if (!page.Root.GetProperty("more").GetBoolean())
            {
                return all;
            }

            Assert.That(page.Messages, Has.Count.EqualTo(limit), "a page short of its limit says no more");
            var oldest = page.Messages[0];
            page = await client.RequestAsync(new { type = "history", limit, before = oldest.Seq, epoch = oldest.Epoch }, cancellationToken);
        }
    }
}
