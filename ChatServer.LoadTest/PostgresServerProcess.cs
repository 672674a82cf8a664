using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace ChatServer.LoadTest;

/// <summary>
/// A throwaway PostgreSQL from Debian's binaries, for the tests and for the load tool's <c>--start-postgres</c>:
/// <c>initdb</c> into a fresh temp folder, then <c>postgres</c> as a child process listening only on 127.0.0.1 (its
/// unix socket in that folder), trust authentication; fsync off for the tests, PostgreSQL's own durability for a load
/// run (<c>durable</c>), so the archive's cost is billed as a real database would bill it. It can be stopped (fast
/// shutdown, data kept) and started again on the same port and data, so a test can take it away while the server
/// under test uses it. As root it runs as the <c>postgres</c> system user, because PostgreSQL refuses to run as root.
/// </summary>
/// <remarks>
/// A small shell between us and the postmaster waits on its standard input, which only this process holds: when the
/// test run ends, even by a crash, the read ends, the shell stops the postmaster (fast shutdown) and, unless
/// <see cref="StopAsync"/> asked it to keep the data, deletes the temp folder. No orphan survives the run.
/// </remarks>
internal sealed class PostgresServerProcess : IDisposable
{
    private const string SystemUser = "postgres";

    // $1 the folder to delete at the end, then the postmaster's command line. A line "keep" on standard input stops
    // the postmaster and keeps the folder; the end of standard input (closed by us, or by our death) deletes it.
    private const string Supervisor = """
        dir=$1; shift
        "$@" </dev/null &
        pid=$!
        read -r line || line=
        kill -INT "$pid" 2>/dev/null
        wait "$pid"
        status=$?
        [ "$line" = keep ] || rm -rf "$dir"
        exit "$status"
        """;

    private static readonly TimeSpan s_readyTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_stopTimeout = TimeSpan.FromSeconds(30);

    private readonly string _binDirectory;
    private readonly string _directory;
    private readonly bool _asSystemUser = Environment.IsPrivilegedProcess;
    private readonly bool _durable;
    private readonly Queue<string> _log = new();
    private Process? _process;

    private PostgresServerProcess(string binDirectory, int port, bool durable)
    {
        _binDirectory = binDirectory;
        Port = port;
        _durable = durable;
        _directory = Directory.CreateTempSubdirectory("chat-postgres-").FullName;
    }

    public int Port { get; }

    /// <summary><c>Host=127.0.0.1;Port=…;Username=postgres;Database=postgres</c> with the tests' pooling options.</summary>
    public string ConnectionString => WithPooling(new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = SystemUser,
        Database = "postgres",
    }.ConnectionString);

    /// <summary>The postmaster's process id while it runs (not the shell's that supervises it), else 0.</summary>
    public int ProcessId { get; private set; }

    /// <summary>The data folder (<c>PGDATA</c>), kept across <see cref="StopAsync"/> and <see cref="StartAgainAsync"/>.</summary>
    public string DataDirectory => Path.Combine(_directory, "data");

    /// <summary>Where the binaries came from, for the test log: say <c>/usr/lib/postgresql/15/bin</c>.</summary>
    public string Binaries => _binDirectory;

    /// <summary>
    /// Makes a fresh cluster on a free loopback port, starts it and waits until it answers <c>select 1</c>;
    /// <paramref name="durable"/>: with PostgreSQL's default durability instead of the tests' fsync off.
    /// </summary>
    public static async Task<PostgresServerProcess> StartAsync(bool durable = false, CancellationToken cancellationToken = default)
    {
        var server = new PostgresServerProcess(FindBinDirectory(), FreePort(), durable);
        try
        {
            await server.InitDbAsync(cancellationToken);
            await server.StartAgainAsync(cancellationToken);
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The bin folder of the newest PostgreSQL under <c>/usr/lib/postgresql/*/bin</c> (Debian's layout), else the one
    /// on PATH, that has both <c>initdb</c> and <c>postgres</c>.
    /// </summary>
    public static string FindBinDirectory()
    {
        static bool Complete(string dir) => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "postgres"));
        static Version? VersionOf(string name) =>
            Version.TryParse(name.Contains('.', StringComparison.Ordinal) ? name : name + ".0", out var version) ? version : null;

        var debian = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(versionDir => (Version: VersionOf(Path.GetFileName(versionDir)), Bin: Path.Combine(versionDir, "bin")))
                .Where(candidate => candidate.Version is not null && Complete(candidate.Bin))
                .OrderByDescending(candidate => candidate.Version)
                .Select(candidate => candidate.Bin)
                .FirstOrDefault()
            : null;
        return debian
            ?? (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(Complete)
            ?? throw new InvalidOperationException("No PostgreSQL binaries: install postgresql (apt-get install postgresql).");
    }

    /// <summary>Starts (or restarts) the postmaster on <see cref="Port"/> and the same data, and waits until it answers <c>select 1</c>.</summary>
    public async Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        if (_process is not null)
        {
            throw new InvalidOperationException("PostgreSQL is already running; StopAsync it first.");
        }

        lock (_log)
        {
            _log.Clear();
        }

        string[] speed = _durable ? [] : ["-c", "fsync=off", "-c", "full_page_writes=off"];
        _process = Start("/bin/sh", [
            "-c", Supervisor, "postgres-supervisor", _directory,
            Path.Combine(_binDirectory, "postgres"),
            "-D", DataDirectory,
            "-p", Port.ToString(CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1",
            "-c", $"unix_socket_directories={_directory}",
            .. speed,
            "-c", "max_connections=200",
        ], redirectInput: true);

        var probe = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 2 }.ConnectionString;
        var deadline = DateTime.UtcNow + s_readyTimeout;
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync(cancellationToken);
                await using var select = new NpgsqlCommand("select 1", connection);
                await select.ExecuteScalarAsync(cancellationToken);
                break;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(25, cancellationToken);
            }
            catch (NpgsqlException ex)
            {
                var exited = _process.HasExited;
                await StopAsync();
                throw new InvalidOperationException(
                    $"PostgreSQL on port {Port} {(exited ? "exited" : "did not answer within " + s_readyTimeout.TotalSeconds + " s")}: {ex.Message}\n{Log()}", ex);
            }
        }

        var pidFile = await File.ReadAllLinesAsync(Path.Combine(DataDirectory, "postmaster.pid"), cancellationToken);
        ProcessId = int.Parse(pidFile[0], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Stops the postmaster with a fast shutdown (open sessions are ended, data kept) and waits until it has exited:
    /// new connections are then refused until <see cref="StartAgainAsync"/>.
    /// </summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        try
        {
            if (!_process.HasExited)
            {
                await _process.StandardInput.WriteLineAsync("keep");
                _process.StandardInput.Close();
            }
        }
        catch (IOException)
        {
            // the supervisor is already gone
        }

        using var timeout = new CancellationTokenSource(s_stopTimeout);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _process = null;
        ProcessId = 0;
    }

    /// <summary>Stops the postmaster (fast shutdown, or a kill if that hangs) and deletes its temp folder with the data.</summary>
    public void Dispose()
    {
        if (_process is not null)
        {
            try
            {
                _process.StandardInput.Close();   // the supervisor stops the postmaster and deletes the folder
            }
            catch (IOException)
            {
                // the supervisor is already gone
            }

            if (!_process.WaitForExit(s_stopTimeout))
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }

            _process.Dispose();
            _process = null;
            ProcessId = 0;
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // already gone (the supervisor deletes it), or best effort: a temp folder
        }
    }

    /// <summary>
    /// Creates an empty database on the server of <paramref name="connectionString"/> (its user must be allowed to) and
    /// returns the same connection string naming it: <paramref name="namePrefix"/>, lowercased, and a GUID.
    /// </summary>
    public static async Task<string> CreateDatabaseAsync(string connectionString, string namePrefix, CancellationToken cancellationToken = default)
    {
        var prefix = string.Concat(namePrefix.ToLowerInvariant().Where(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'));
        if (prefix.Length == 0 || !char.IsAsciiLetterLower(prefix[0]))
        {
            prefix = "test_" + prefix;
        }

        var name = $"{prefix[..Math.Min(prefix.Length, 30)]}_{Guid.NewGuid():N}";   // 63 bytes at most, PostgreSQL's identifier limit
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(cancellationToken);
            // FILE_COPY (PostgreSQL 15 on) copies the template's files: a few times faster than the default WAL_LOG,
            // which writes every block to the WAL, for the near-empty template here.
            var strategy = connection.PostgreSqlVersion.Major >= 15 ? " strategy file_copy" : "";
            await using var create = new NpgsqlCommand($"create database \"{name}\"{strategy}", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        return new NpgsqlConnectionStringBuilder(connectionString) { Database = name }.ConnectionString;
    }

    /// <summary>
    /// The tests' pooling options on a connection string: a small pool per database (many fixtures share one server),
    /// a short connect timeout so a stopped server fails fast, and error details in exceptions.
    /// </summary>
    internal static string WithPooling(string connectionString) => new NpgsqlConnectionStringBuilder(connectionString)
    {
        Pooling = true,
        MaxPoolSize = 20,
        Timeout = 5,
        IncludeErrorDetail = true,
    }.ConnectionString;

    private async Task InitDbAsync(CancellationToken cancellationToken)
    {
        if (_asSystemUser)
        {
            await RunAsync("chown", ["-R", $"{SystemUser}:{SystemUser}", _directory], asSystemUser: false, cancellationToken);
        }

        await RunAsync(Path.Combine(_binDirectory, "initdb"), [
            "-D", DataDirectory, "--auth=trust", "-U", SystemUser, "--no-locale", "-E", "UTF8", "--no-sync",
        ], _asSystemUser, cancellationToken);
    }

    private async Task RunAsync(string fileName, string[] arguments, bool asSystemUser, CancellationToken cancellationToken)
    {
        using var process = Start(fileName, arguments, redirectInput: false, asSystemUser);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        process.WaitForExit();   // the output of the last lines is in the log
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(fileName)} exited with {process.ExitCode}:\n{Log()}");
        }
    }

    /// <summary>Starts a child with its output kept for error messages; as root through <c>runuser -u postgres</c>.</summary>
    private Process Start(string fileName, string[] arguments, bool redirectInput, bool? asSystemUser = null)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = redirectInput,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,   // one the postgres user can enter
        };
        if (asSystemUser ?? _asSystemUser)
        {
            info.FileName = FindRunuser();
            foreach (var arg in new[] { "-u", SystemUser, "--", fileName })
            {
                info.ArgumentList.Add(arg);
            }
        }
        else
        {
            info.FileName = fileName;
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
