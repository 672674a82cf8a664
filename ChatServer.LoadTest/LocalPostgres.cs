using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace ChatServer.LoadTest;

/// <summary>
/// <c>--start-postgres</c>: a throwaway PostgreSQL, started the way the tests' <c>PostgresServerProcess</c>
/// (ChatServer.Tests/Infrastructure/TestPostgres.cs) does: Debian's binaries (<c>/usr/lib/postgresql/*/bin</c>),
/// <c>initdb</c> into a fresh temp folder, the postmaster on a free loopback port with trust authentication, as the
/// <c>postgres</c> system user through <c>runuser</c> when the tool runs as root (PostgreSQL refuses root). Unlike the
/// tests' server, durability settings are PostgreSQL's defaults (fsync and synchronous commit on): the archive's cost
/// is measured as a real database would bill it.
/// </summary>
/// <remarks>
/// A small shell between the tool and the postmaster waits on its standard input, which only the tool holds: when the
/// tool ends, even by a crash, the read ends, the shell stops the postmaster (fast shutdown) and deletes the folder.
/// </remarks>
internal sealed class LocalPostgres : IAsyncDisposable
{
    private const string SystemUser = "postgres";

    private const string Supervisor = """
        dir=$1; shift
        "$@" </dev/null &
        pid=$!
        read -r line || line=
        kill -INT "$pid" 2>/dev/null
        wait "$pid"
        status=$?
        rm -rf "$dir"
        exit "$status"
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("chat-loadtest-postgres-").FullName;
    private readonly bool _asSystemUser = Environment.IsPrivilegedProcess;
    private readonly Queue<string> _log = new();
    private Process? _supervisor;

    private LocalPostgres(string binDirectory, int port) => (Binaries, Port) = (binDirectory, port);

    public string Binaries { get; }

    public int Port { get; }

    /// <summary>The postmaster's process id (its backends are its children): PostgreSQL's CPU is read from it.</summary>
    public int PostmasterProcessId { get; private set; }

    /// <summary>The <c>postgres</c> database as the superuser <c>postgres</c>.</summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = SystemUser,
        Database = "postgres",
    }.ConnectionString;

    public static async Task<LocalPostgres> StartAsync(TextWriter log, CancellationToken cancellationToken)
    {
        var server = new LocalPostgres(FindBinDirectory(), FreePort());
        try
        {
            if (server._asSystemUser)
            {
                await server.RunAsync("chown", ["-R", $"{SystemUser}:{SystemUser}", server._directory], asSystemUser: false, cancellationToken);
            }

            await server.RunAsync(Path.Combine(server.Binaries, "initdb"),
                ["-D", server.DataDirectory, "--auth=trust", "-U", SystemUser, "--no-locale", "-E", "UTF8", "--no-sync"], server._asSystemUser, cancellationToken);
            await server.StartPostmasterAsync(cancellationToken);
            await log.WriteLineAsync($"postgres pid {server.PostmasterProcessId} on 127.0.0.1:{server.Port} ({server.Binaries}, data in {server._directory})");
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private string DataDirectory => Path.Combine(_directory, "data");

    /// <summary>The newest <c>/usr/lib/postgresql/*/bin</c> with <c>initdb</c> and <c>postgres</c>, else one on PATH.</summary>
    private static string FindBinDirectory()
    {
        static bool Complete(string dir) => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "postgres"));
        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(dir => (Version: int.TryParse(Path.GetFileName(dir), out var v) ? v : -1, Bin: Path.Combine(dir, "bin")))
                .Where(c => c.Version >= 0 && Complete(c.Bin))
                .OrderByDescending(c => c.Version)
                .Select(c => c.Bin)
                .FirstOrDefault()
            : null;
        return debian
            ?? (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(Complete)
            ?? throw new InvalidOperationException("--start-postgres: no PostgreSQL binaries (apt-get install postgresql); or give --history-db.");
    }

    private async Task StartPostmasterAsync(CancellationToken cancellationToken)
    {
        _supervisor = Start("/bin/sh", [
            "-c", Supervisor, "postgres-supervisor", _directory,
            Path.Combine(Binaries, "postgres"),
            "-D", DataDirectory,
            "-p", Port.ToString(CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1",
            "-c", $"unix_socket_directories={_directory}",
            "-c", "max_connections=200",
        ], redirectInput: true, _asSystemUser);

        var probe = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 2 }.ConnectionString;
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync(cancellationToken);
                break;
            }
            catch (NpgsqlException) when (deadline.Elapsed < TimeSpan.FromSeconds(30) && !_supervisor.HasExited)
            {
                await Task.Delay(25, cancellationToken);
            }
            catch (NpgsqlException ex)
            {
                throw new InvalidOperationException($"PostgreSQL on port {Port} did not start: {ex.Message}\n{Log()}", ex);
            }
        }

        var pidFile = await File.ReadAllLinesAsync(Path.Combine(DataDirectory, "postmaster.pid"), cancellationToken);
        PostmasterProcessId = int.Parse(pidFile[0], CultureInfo.InvariantCulture);
    }

    /// <summary>Ends the supervisor's read: it stops the postmaster (fast shutdown) and deletes the folder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_supervisor is { } supervisor)
        {
            try
            {
                supervisor.StandardInput.Close();
            }
            catch (IOException)
            {
                // already gone
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await supervisor.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                supervisor.Kill(entireProcessTree: true);
                await supervisor.WaitForExitAsync(CancellationToken.None);
            }

            supervisor.Dispose();
            _supervisor = null;
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // the supervisor deleted it already
        }
    }

    private async Task RunAsync(string fileName, string[] arguments, bool asSystemUser, CancellationToken cancellationToken)
    {
        using var process = Start(fileName, arguments, redirectInput: false, asSystemUser);
        await process.WaitForExitAsync(cancellationToken);
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(fileName)} exited with {process.ExitCode}:\n{Log()}");
        }
    }

    private Process Start(string fileName, string[] arguments, bool redirectInput, bool asSystemUser)
    {
        var info = new ProcessStartInfo
        {
            FileName = asSystemUser ? FindRunuser() : fileName,
            RedirectStandardInput = redirectInput,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,   // one the postgres user can enter
        };
        if (asSystemUser)
        {
            foreach (var arg in new[] { "-u", SystemUser, "--", fileName })
            {
                info.ArgumentList.Add(arg);
            }
        }

        foreach (var arg in arguments)
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{fileName} did not start.");
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static readonly string[] s_runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"];

    private static string FindRunuser() =>
        s_runuser.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("PostgreSQL refuses to run as root, and there is no runuser to run it as the postgres user.");

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.Enqueue(line);
            if (_log.Count > 50)
            {
                _log.Dequeue();
            }
        }
    }

    private string Log()
    {
        lock (_log)
        {
            return string.Join('\n', _log);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
