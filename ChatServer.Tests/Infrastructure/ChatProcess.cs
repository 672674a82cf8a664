using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ChatServer.Tests;

/// <summary>
/// ChatServer as a separate process (the built ChatServer.dll beside the tests), so a test can kill an instance
/// abruptly, as a crashed container or a lost VM would go: no 1012, no leave notifications, no unsubscribes; or so a
/// test sees a cold start, or a start that fails, exactly as a container would.
/// </summary>
public sealed class ChatProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private ChatProcess(Process process, int port)
    {
        _process = process;
        BaseUri = new Uri($"http://127.0.0.1:{port}");
    }

    public Uri BaseUri { get; }

    public Uri WebSocketUri => new UriBuilder(BaseUri) { Scheme = "ws", Path = "/ws" }.Uri;

    /// <summary>Every line the process wrote to stdout and stderr so far.</summary>
    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_output)
            {
                return [.. _output];
            }
        }
    }

    /// <summary>Starts the server and returns once <c>/readyz</c> answers 200 (or the token's deadline passes).</summary>
    public static async Task<ChatProcess> StartAsync(string redis, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        var chat = Start(redis, settings);
        try
        {
            await chat.WaitUntilReadyAsync(cancellationToken);
            return chat;
        }
        catch
        {
            chat.Dispose();
            throw;
        }
    }

    /// <summary>Starts the server and returns at once: the caller decides what to wait for.</summary>
    public static ChatProcess Start(string redis, IReadOnlyDictionary<string, string>? settings = null)
    {
        var port = FreePort();
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ChatServer.dll"));
        info.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["Redis__Configuration"] = redis;
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var chat = new ChatProcess(process, port);
        process.OutputDataReceived += (_, e) => chat.Record(e.Data);
        process.ErrorDataReceived += (_, e) => chat.Record(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return chat;
    }

    /// <summary>Polls <c>/readyz</c> until it answers 200; fails at once if the process exits.</summary>
    public async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = BaseUri };
        while (true)   // until it answers ready, or the test's deadline
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"ChatServer exited with {_process.ExitCode}:\n{string.Join('\n', Output)}");
            }

            try
            {
                if ((await http.GetAsync("/readyz", cancellationToken)).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>
    /// Starts the server with <paramref name="settings"/> (configuration keys, <c>:</c> separated) that must stop it at
    /// start, and returns its exit code and everything it wrote. A real process: the test host's deferred start can
    /// hide such an error behind an ObjectDisposedException when the app fails that fast.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunFailingStartAsync(IReadOnlyDictionary<string, string> settings,
        CancellationToken cancellationToken)
    {
        using var server = Start("", settings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value));
        var exitCode = await server.WaitForExitAsync(cancellationToken);
        return (exitCode, string.Join('\n', server.Output));
    }

    /// <summary>Waits for the process to end by itself and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        return _process.ExitCode;
    }

    private void Record(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.Add(line);
            }
        }
    }

    /// <summary>SIGKILL: the process gets no chance to clean up.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
