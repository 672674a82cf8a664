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

    // The server's own connections (RedisSubscriber), one per share of the rooms: a room always uses the same one, for
    // its subscription and its appends, so its reply and its message arrive on one socket. Empty: the library serves.
    private RedisSubscriber[] _direct = [];
    private bool _directSubscriptions;
    private bool _directCommands;

    /// <summary>How many own connections when <see cref="RedisOptions.DirectConnections"/> is 0: one per two cores, 1 to 8.</summary>
    internal static int DefaultDirectConnections => Math.Min(ChatServerRegistration.PerTwoCores, 8);

    public string? Configuration { get; } = options.Value.EffectiveConfiguration();

    public bool IsConfigured => Configuration is not null;

    public bool IsConnected => _multiplexer?.IsConnected == true && _direct.All(d => d.IsConnected);

    /// <summary>The own connection <paramref name="room"/>'s channel is subscribed on, or null (the library's).</summary>
    public RedisSubscriber? SubscriberFor(string room) => _directSubscriptions ? DirectFor(room) : null;

    /// <summary>The own connection <paramref name="room"/>'s appends run on, or null (the library's).</summary>
    public RedisSubscriber? CommandsFor(string room) => _directCommands ? DirectFor(room) : null;

    private RedisSubscriber DirectFor(string room) =>
        _direct[(int)((uint)StringComparer.Ordinal.GetHashCode(room) % (uint)_direct.Length)];

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
        if (!string.IsNullOrWhiteSpace(options.Value.TrustedCaCertificate))
        {
            configuration.TrustIssuer(options.Value.TrustedCaCertificate);
        }

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
            // Rooms spread over these connections (and threads). By default one per two cores, up to 8: a thread's
            // deliveries can use a core while the socket event loops take the clients' frames on the other, and on the
            // one or two cores of a Cloud Run instance one thread takes the pushes of every room, more per read and
            // fewer wake-ups (Redis__DirectConnections; docs/benchmarks.md, issue 11 round 5).
            var count = options.Value.DirectConnections > 0 ? options.Value.DirectConnections : DefaultDirectConnections;
            _direct = [.. Enumerable.Range(0, count).Select(_ => RedisSubscriber.Start(configuration, logger, resp3: commands, batchSends: options.Value.BatchSends,
                batchWindow: TimeSpan.FromMilliseconds(options.Value.BatchWindowMs)))];
            (_directSubscriptions, _directCommands) = (subscriptions, commands);
            if (subscriptions)
            {
                foreach (var direct in _direct)
                {
                    direct.Restored += () => Restored?.Invoke();
                }

                RedisLog.UsingOwnSubscriber(logger, count);
            }

            if (commands)
            {
                RedisLog.UsingOwnCommands(logger);
            }

            // Ready means every connection is up: wait for ours as the library waited for its own (Redis down: not long).
            await Task.WhenAny(Task.WhenAll(_direct.Select(d => d.Connected)), Task.Delay(configuration.ConnectTimeout, cancellationToken));
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var direct in _direct)
        {
            direct.Dispose();
        }

        if (_multiplexer is not null)
        {
            await _multiplexer.DisposeAsync();
        }
    }
}
