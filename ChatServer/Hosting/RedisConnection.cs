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

    /// <summary>The room channels' own subscriber connection, when the configuration allows it (else null).</summary>
    public RedisSubscriber? Subscriber { get; private set; }

    public string? Configuration { get; } = options.Value.EffectiveConfiguration();

    public bool IsConfigured => Configuration is not null;

    public bool IsConnected => _multiplexer?.IsConnected == true && Subscriber?.IsConnected != false && Commands?.IsConnected != false;

    /// <summary>The connection the append script runs on, when the configuration allows it (else null): the same as <see cref="Subscriber"/> when both are ours.</summary>
    public RedisSubscriber? Commands { get; private set; }

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
        _multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken);
        _multiplexer.ConnectionFailed += (_, e) => RedisLog.ConnectionFailed(logger, e.ConnectionType, e.EndPoint?.ToString(), e.Exception);
        _multiplexer.ConnectionRestored += (_, e) =>
        {
            RedisLog.ConnectionRestored(logger, e.ConnectionType, e.EndPoint?.ToString());
            Restored?.Invoke();
        };
        RedisLog.UsingRedis(logger, string.Join(", ", configuration.EndPoints.Select(e => e.ToString())), _multiplexer.IsConnected);
        // The server's own connection (RedisSubscriber): room subscriptions, and, on Redis 6+ (RESP3) without a Cluster,
        // the append script too, so the sender's reply and its room's message arrive on one socket and one thread.
        var server = _multiplexer.IsConnected ? _multiplexer.GetServer(configuration.EndPoints[0]) : null;
        var subscriptions = RedisSubscriber.IsUsable(configuration, options.Value);
        var commands = RedisSubscriber.CanRunCommands(configuration, options.Value, server?.ServerType, server?.Version);
        if (subscriptions || commands)
        {
            var direct = RedisSubscriber.Start(configuration, logger, resp3: commands);
            if (subscriptions)
            {
                Subscriber = direct;
                direct.Restored += () => Restored?.Invoke();
                RedisLog.UsingOwnSubscriber(logger);
            }

            if (commands)
            {
                Commands = direct;
                RedisLog.UsingOwnCommands(logger);
            }

            // Ready means every connection is up: wait for ours as the library waited for its own (Redis down: not long).
            await Task.WhenAny(direct.Connected, Task.Delay(configuration.ConnectTimeout, cancellationToken));
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        (Subscriber ?? Commands)?.Dispose();
        if (_multiplexer is not null)
        {
            await _multiplexer.DisposeAsync();
        }
    }
}
