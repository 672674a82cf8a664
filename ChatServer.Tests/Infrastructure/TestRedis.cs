using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;
using Testcontainers.Redis;

namespace ChatServer.Tests;

/// <summary>
/// One Redis for the whole test assembly, found in this order: a connection string in <c>CHAT_TEST_REDIS</c>; a
/// Testcontainers Redis when a Docker engine answers; a <c>redis-server</c> started here on a free loopback port with
/// persistence off. Tests isolate themselves by fresh room names, never by flushing.
/// </summary>
[SetUpFixture]
public sealed class TestRedis
{
    private static RedisContainer? s_container;
    private static RedisServerProcess? s_process;

    public static string ConnectionString { get; private set; } = "";

    /// <summary>How the Redis was found, for the test log.</summary>
    public static string Source { get; private set; } = "";

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("CHAT_TEST_REDIS");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            (ConnectionString, Source) = (fromEnvironment, "CHAT_TEST_REDIS");
        }
        else if (DockerMayAnswer() && await TryStartContainerAsync() is { } container)
        {
            s_container = container;
            (ConnectionString, Source) = (container.GetConnectionString(), "Testcontainers");
        }
        else
        {
            s_process = await RedisServerProcess.StartAsync();
            (ConnectionString, Source) = (s_process.ConnectionString, $"redis-server pid {s_process.ProcessId}");
        }

        await TestContext.Progress.WriteLineAsync($"Redis for tests: {ConnectionString} ({Source})");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (s_container is not null)
        {
            await s_container.DisposeAsync();
        }

        s_process?.Dispose();
        await TestRedisCluster.StopSharedAsync();
        await TestRedisTls.StopSharedAsync();
        await TestPostgres.StopSharedAsync();
    }

    /// <summary>Whether a Docker engine may be there to ask (<see cref="TestPostgres"/> asks the same way).</summary>
    internal static bool DockerMayAnswer() =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DOCKER_HOST")) || File.Exists("/var/run/docker.sock");

    private static async Task<RedisContainer?> TryStartContainerAsync()
    {
        try
        {
            var container = new RedisBuilder("redis:7.4-alpine").Build();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await container.StartAsync(timeout.Token);
            return container;
        }
        catch (Exception ex)   // no engine, no image, no network: fall back to a local redis-server
        {
            await TestContext.Progress.WriteLineAsync($"Testcontainers unavailable ({ex.GetType().Name}: {ex.Message}); using redis-server.");
            return null;
        }
    }
}

/// <summary>A <c>redis-server</c> child process on a loopback port; it can be stopped and started again on that port.</summary>
public sealed class RedisServerProcess : IDisposable
{
    private Process? _process;

    private readonly string _directory;

    private readonly string[] _extraArgs;

    // How to reach a TLS-only server (TLS, its user, the CA to trust): null for a plain one at ConnectionString.
    private readonly ConfigurationOptions? _tlsClient;

    private RedisServerProcess(int port, string[] extraArgs, ConfigurationOptions? tlsClient = null)
    {
        Port = port;
        _extraArgs = extraArgs;
        _tlsClient = tlsClient;
        _directory = Directory.CreateTempSubdirectory("chat-redis-").FullName;   // where SaveAndStopAsync's dump goes
    }

    public int Port { get; }

    /// <summary>The plain endpoint; a server from <see cref="StartTlsAsync"/> is reached with its client options instead.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public int ProcessId => _process?.Id ?? 0;

    /// <summary>Starts a server; <paramref name="extraArgs"/> go after the defaults (say <c>--replicaof 127.0.0.1 6379</c>).</summary>
    public static async Task<RedisServerProcess> StartAsync(int port = 0, params string[] extraArgs)
    {
        var server = new RedisServerProcess(port == 0 ? FreePort() : port, extraArgs);
        await server.StartAgainAsync();
        return server;
    }

    /// <summary>
    /// Starts a server that listens only for TLS (<c>--port 0 --tls-port</c>) on <paramref name="port"/>;
    /// <paramref name="client"/> is how to reach it (TLS, user and password, the CA to trust), for the readiness probe and
    /// <see cref="SaveAndStopAsync"/>. <paramref name="extraArgs"/> carry the certificate files and the ACL.
    /// </summary>
    public static async Task<RedisServerProcess> StartTlsAsync(int port, ConfigurationOptions client, params string[] extraArgs)
    {
        var server = new RedisServerProcess(port, extraArgs, client);
        await server.StartAgainAsync();
        return server;
    }

    public static string FindBinary()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException(
            "No Redis for the tests: set CHAT_TEST_REDIS, run a Docker engine, or install redis-server (apt-get install redis-server).");
    }

    /// <summary>Starts (or restarts) the server on <see cref="Port"/> and waits until it answers PING.</summary>
    public async Task StartAgainAsync()
    {
        var info = new ProcessStartInfo(FindBinary())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var port = Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] listen = _tlsClient is null ? ["--port", port] : ["--port", "0", "--tls-port", port];
        foreach (var arg in listen.Concat(["--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", _directory, "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"]).Concat(_extraArgs))
        {
            info.ArgumentList.Add(arg);
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                var options = ClientOptions();
                options.ConnectTimeout = 1000;
                await using var probe = await ConnectionMultiplexer.ConnectAsync(options);
                await probe.GetDatabase().PingAsync();
                return;
            }
            catch (RedisConnectionException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>Saves the data set and stops (SHUTDOWN SAVE): a restart with <see cref="StartAgainAsync"/> has the same data.</summary>
    public async Task SaveAndStopAsync()
    {
        var options = ClientOptions();
        options.AllowAdmin = true;
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(options))
        {
            try
            {
                await admin.GetServer(options.EndPoints[0]).ExecuteAsync("SHUTDOWN", "SAVE");
            }
            catch (RedisConnectionException)
            {
                // the server closes the connection as it shuts down
            }
        }

        await _process!.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    private ConfigurationOptions ClientOptions() => _tlsClient?.Clone() ?? ConfigurationOptions.Parse(ConnectionString);

    /// <summary>Kills the server at once (no save: its data is gone).</summary>
    public void Stop()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process?.Dispose();
        _process = null;
    }

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp folder
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
