using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ChatServer.Tests;

/// <summary>
/// A real three-primary Redis Cluster on loopback ports, from Debian's <c>redis-server</c> and <c>redis-cli</c>, started
/// the first time a test asks for it and stopped when the assembly's tests end (<see cref="TestRedis"/> tears it down).
/// Only tests that need a cluster pay for it.
/// </summary>
public sealed class TestRedisCluster : IDisposable
{
    private static readonly Lazy<Task<TestRedisCluster>> s_shared = new(StartAsync);

    private readonly string _directory;
    private readonly List<Process> _nodes = [];

    private readonly IReadOnlyList<int> _busPorts;

    private TestRedisCluster(string directory, IReadOnlyList<int> ports, IReadOnlyList<int> busPorts) =>
        (_directory, Ports, _busPorts) = (directory, ports, busPorts);

    public IReadOnlyList<int> Ports { get; }

    /// <summary>All three nodes, as a StackExchange.Redis configuration string: the library discovers the slot map.</summary>
    public string ConnectionString => string.Join(",", Ports.Select(p => $"127.0.0.1:{p}"));

    public IEnumerable<string> Nodes => Ports.Select(p => $"127.0.0.1:{p}");

    /// <summary>The cluster for this test run, started on first use.</summary>
    public static Task<TestRedisCluster> GetAsync() => s_shared.Value;

    /// <summary>Stops the cluster if a test started one.</summary>
    internal static async Task StopSharedAsync()
    {
        if (s_shared.IsValueCreated)
        {
            try
            {
                (await s_shared.Value).Dispose();
            }
            catch (InvalidOperationException)
            {
                // it never started; StartAsync already cleaned up
            }
        }
    }

    private static async Task<TestRedisCluster> StartAsync()
    {
        var directory = Directory.CreateTempSubdirectory("chat-redis-cluster-").FullName;
        var ports = FreePorts(6);
        var cluster = new TestRedisCluster(directory, ports[..3], ports[3..]);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            for (var i = 0; i < cluster.Ports.Count; i++)
            {
                cluster._nodes.Add(cluster.StartNode(cluster.Ports[i], cluster._busPorts[i]));
            }

            foreach (var port in cluster.Ports)
            {
                await WaitUntilAsync(port, "PING", reply => reply.StartsWith("PONG", StringComparison.Ordinal), timeout.Token);
            }

            var create = await RunCliAsync(["--cluster", "create", .. cluster.Nodes, "--cluster-replicas", "0", "--cluster-yes"], timeout.Token);
            if (create.ExitCode != 0)
            {
                throw new InvalidOperationException($"redis-cli --cluster create failed ({create.ExitCode}): {create.Output}");
            }

            // Every node must agree the slots are covered before clients connect, or they would see a partial map.
            foreach (var port in cluster.Ports)
            {
                await WaitUntilAsync(port, "CLUSTER INFO", reply => reply.Contains("cluster_state:ok", StringComparison.Ordinal), timeout.Token);
            }

            await TestContext.Progress.WriteLineAsync($"Redis Cluster for tests: {cluster.ConnectionString}");
            return cluster;
        }
        catch (Exception ex)
        {
            cluster.Dispose();
            throw new InvalidOperationException($"The test Redis Cluster did not start: {ex.Message}", ex);
        }
    }

    // The bus port is explicit: the default (port + 10000) overflows for ephemeral ports above 55535.
    private Process StartNode(int port, int busPort)
    {
        var info = new ProcessStartInfo(RedisServerProcess.FindBinary())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var p = port.ToString(CultureInfo.InvariantCulture);
        foreach (var arg in new[] { "--port", p, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                     "--cluster-port", busPort.ToString(CultureInfo.InvariantCulture),
                     "--cluster-config-file", Path.Combine(_directory, $"nodes-{p}.conf"), "--dir", _directory,
                     "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning" })
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs <c>redis-cli</c> against one node until its reply satisfies <paramref name="done"/>.</summary>
    private static async Task WaitUntilAsync(int port, string command, Func<string, bool> done, CancellationToken cancellationToken)
    {
        string[] args = ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), .. command.Split(' ')];
        while (true)
        {
            var result = await RunCliAsync(args, cancellationToken);
            if (result.ExitCode == 0 && done(result.Output))
            {
                return;
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunCliAsync(IEnumerable<string> args, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(FindCli())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("redis-cli did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await output + await error);
    }

    private static string FindCli()
    {
        var server = RedisServerProcess.FindBinary();
        var candidate = Path.Combine(Path.GetDirectoryName(server)!, "redis-cli");
        return File.Exists(candidate) ? candidate
            : throw new InvalidOperationException("No redis-cli for the cluster tests: apt-get install redis-tools.");
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            if (!node.HasExited)
            {
                node.Kill(entireProcessTree: true);
                node.WaitForExit();
            }

            node.Dispose();
        }

        _nodes.Clear();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp folder
        }
    }

    /// <summary>Distinct free loopback ports: all listeners stay open until every port is picked.</summary>
    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
        try
        {
            foreach (var listener in listeners)
            {
                listener.Start();
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Dispose();
            }
        }
    }
}
