using ChatServer.Rooms;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ChatServer.Hosting;

/// <summary>
/// The process's one <see cref="ConnectionMultiplexer"/>, made in <see cref="StartAsync"/> (async construction in a
/// hosted service) and kept. It starts even when Redis is down (<c>AbortOnConnectFail = false</c>) and reconnects by
/// itself; meanwhile commands fail fast, so frames get <c>ok:false</c> instead of waiting, and <c>/readyz</c> says 503.
/// With no Redis configured it does nothing and the in-process bus serves.
/// </summary>
internal sealed class RedisConnection(IOptions<RedisOptions> options, ILogger<RedisConnection> logger) : IHostedService, IAsyncDisposable
{
    private ConnectionMultiplexer? _multiplexer;

    public string? Configuration { get; } = options.Value.EffectiveConfiguration();

    public bool IsConfigured => Configuration is not null;

    public bool IsConnected => _multiplexer?.IsConnected == true;

    /// <summary>
    /// Raised when a connection to Redis is re-established. Pub/sub is at-most-once: whatever was published while the
    /// subscription connection was down is lost to this instance, so subscribers catch up from history.
    /// </summary>
    public event Action? Restored;

    public IConnectionMultiplexer Multiplexer =>
        _multiplexer ?? throw new StoreUnavailableException("The Redis connection has not been started.");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Configuration is null)
        {
            RedisLog.UsingInProcessBus(logger);
            return;
        }

        var configuration = ConfigurationOptions.Parse(Configuration);
        configuration.AbortOnConnectFail = false;
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.ClientName ??= "chatserver";
        // RESP2 keeps subscriptions on a connection of their own: Redis cutting off a subscriber that fell behind
        // (client-output-buffer-limit pubsub) must not fail the appends, which the history then repairs from.
        configuration.Protocol = RedisProtocol.Resp2;
        if (!string.IsNullOrWhiteSpace(options.Value.TrustedCaCertificate))
        {
            configuration.TrustIssuer(options.Value.TrustedCaCertificate);
        }

        _multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken);
        _multiplexer.ConnectionFailed += (_, e) => RedisLog.ConnectionFailed(logger, e.ConnectionType, e.EndPoint?.ToString(), e.Exception);
        _multiplexer.ConnectionRestored += (_, e) =>
        {
            RedisLog.ConnectionRestored(logger, e.ConnectionType, e.EndPoint?.ToString());
            Restored?.Invoke();
        };
        RedisLog.UsingRedis(logger, string.Join(", ", configuration.EndPoints.Select(e => e.ToString())), _multiplexer.IsConnected);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_multiplexer is not null)
        {
            await _multiplexer.DisposeAsync();
        }
    }
}
