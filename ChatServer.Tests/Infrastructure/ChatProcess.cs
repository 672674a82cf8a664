using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ChatServer.Tests;

/// <summary>
/// ChatServer as a separate process (the built ChatServer.dll beside the tests), so a test can kill an instance
/// abruptly, as a crashed container or a lost VM would go: no 1012, no leave notifications, no unsubscribes.
/// </summary>
public sealed class ChatProcess : IDisposable
{
    private readonly Process _process;

    private ChatProcess(Process process, int port)
    {
        _process = process;
        BaseUri = new Uri($"http://127.0.0.1:{port}");
    }

    public Uri BaseUri { get; }

    public Uri WebSocketUri => new UriBuilder(BaseUri) { Scheme = "ws", Path = "/ws" }.Uri;

    public static async Task<ChatProcess> StartAsync(string redis, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? settings = null)
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
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var chat = new ChatProcess(process, port);

        using var http = new HttpClient { BaseAddress = chat.BaseUri };
        while (true)   // until it answers ready, or the test's deadline
        {
            try
            {
                if ((await http.GetAsync("/readyz", cancellationToken)).StatusCode == HttpStatusCode.OK)
                {
                    return chat;
                }
            }
            catch (HttpRequestException) when (!process.HasExited)
            {
            }

            await Task.Delay(50, cancellationToken);
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
