using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServer.Tests;

/// <summary>
/// A real ChatServer on Kestrel, 127.0.0.1, a free port (or the given port, so a test can stop a host and
/// start another where the first one was); <c>redis</c> null means the in-process bus.
/// </summary>
public sealed class ChatHost : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    public ChatHost(string? redis, IReadOnlyDictionary<string, string?>? settings = null, int port = 0)
    {
        _settings = new(settings ?? new Dictionary<string, string?>())
        {
            ["Redis:Configuration"] = redis ?? "",
            ["REDISHOST"] = "",
        };
        UseKestrel(options => options.Listen(IPAddress.Loopback, port));
        StartServer();
        var address = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address);
    }

    public Uri BaseUri { get; }

    /// <summary>A setting key: when present, <see cref="Logs"/> captures every level of every category (request logs too).</summary>
    public const string CaptureAllLogs = "Test:CaptureAllLogs";

    /// <summary>What this host logged (at the levels its configuration lets through).</summary>
    public LogCapture Logs { get; } = new();

    public Uri WebSocketUri => new UriBuilder(BaseUri) { Scheme = "ws", Path = "/ws" }.Uri;

    public HttpClient CreateHttpClient() => new() { BaseAddress = BaseUri };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging =>
        {
            logging.AddProvider(Logs);
            if (_settings.ContainsKey(CaptureAllLogs))
            {
                logging.AddFilter<LogCapture>(null, LogLevel.Trace);   // a rule for this provider outranks appsettings' levels
            }
        });
    }
}
