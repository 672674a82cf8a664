using System.Diagnostics;
using ChatServer.LoadTest;
using Testcontainers.PostgreSql;

namespace ChatServer.Tests;

/// <summary>
/// One PostgreSQL for the whole test assembly, found in this order: a connection string in <c>CHAT_TEST_POSTGRES</c>;
/// a Testcontainers PostgreSQL when a Docker engine may answer; Debian's binaries (<c>/usr/lib/postgresql/*/bin</c>)
/// started here on a free loopback port with fsync off. Started the first time a test asks for it, so only the tests
/// that use it pay for it; stopped when the assembly's tests end (<see cref="TestRedis"/> tears it down). Test fixtures
/// isolate themselves with a database of their own (<see cref="CreateDatabaseAsync"/>), never by dropping anything.
/// </summary>
public sealed class TestPostgres
{
    private static readonly Lazy<Task<TestPostgres>> s_shared = new(StartAsync);

    private readonly PostgreSqlContainer? _container;
    private readonly PostgresServerProcess? _process;

    private TestPostgres(string connectionString, string source, PostgreSqlContainer? container = null, PostgresServerProcess? process = null) =>
        (ConnectionString, Source, _container, _process) = (connectionString, source, container, process);

    /// <summary>An Npgsql connection string to the server's <c>postgres</c> database, as a superuser (or one who may create databases).</summary>
    public string ConnectionString { get; }

    /// <summary>How the PostgreSQL was found, for the test log.</summary>
    public string Source { get; }

    /// <summary>The PostgreSQL for this test run, started on first use.</summary>
    public static Task<TestPostgres> GetAsync() => s_shared.Value;

    /// <summary>The shared server's connection string (its <c>postgres</c> database), started on first use.</summary>
    public static async Task<string> ConnectionStringAsync() => (await GetAsync()).ConnectionString;

    /// <summary>
    /// Creates an empty database of its own on the shared server and returns its connection string: a fixture's tables
    /// and rows are then invisible to every other one, and nobody has to clean up after anybody. The name is
    /// <paramref name="namePrefix"/> (lowercased, other than letters, digits and <c>_</c> dropped) and a GUID.
    /// </summary>
    public static async Task<string> CreateDatabaseAsync(string namePrefix, CancellationToken cancellationToken = default)
    {
        var shared = await GetAsync().WaitAsync(cancellationToken);
        return await PostgresServerProcess.CreateDatabaseAsync(shared.ConnectionString, namePrefix, cancellationToken);
    }

    /// <summary>Stops the server if a test started one.</summary>
    internal static async Task StopSharedAsync()
    {
        if (s_shared.IsValueCreated)
        {
            try
            {
                var shared = await s_shared.Value;
                if (shared._container is not null)
                {
                    await shared._container.DisposeAsync();
                }

                shared._process?.Dispose();
            }
            catch (InvalidOperationException)
            {
                // it never started; StartAsync already cleaned up
            }
        }
    }

    private static async Task<TestPostgres> StartAsync()
    {
        var started = Stopwatch.StartNew();
        TestPostgres shared;
        var fromEnvironment = Environment.GetEnvironmentVariable("CHAT_TEST_POSTGRES");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            shared = new TestPostgres(fromEnvironment, "CHAT_TEST_POSTGRES");
        }
        else if (TestRedis.DockerMayAnswer() && await TryStartContainerAsync() is { } container)
        {
            shared = new TestPostgres(PostgresServerProcess.WithPooling(container.GetConnectionString()), "Testcontainers", container);
        }
        else
        {
            var process = await PostgresServerProcess.StartAsync();
            shared = new TestPostgres(process.ConnectionString, $"{process.Binaries} pid {process.ProcessId}", process: process);
        }

        await TestContext.Progress.WriteLineAsync(
            $"PostgreSQL for tests: {shared.ConnectionString} ({shared.Source}), ready in {started.Elapsed.TotalSeconds:0.0} s");
        return shared;
    }

    private static async Task<PostgreSqlContainer?> TryStartContainerAsync()
    {
        try
        {
            var container = new PostgreSqlBuilder("postgres:16-alpine").Build();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await container.StartAsync(timeout.Token);
            return container;
        }
        catch (Exception ex)   // no engine, no image, no network: fall back to Debian's binaries
        {
            await TestContext.Progress.WriteLineAsync($"Testcontainers unavailable ({ex.GetType().Name}: {ex.Message}); using Debian's postgresql.");
            return null;
        }
    }
}
