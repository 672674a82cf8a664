using System.Diagnostics.CodeAnalysis;
using ChatServer.Connections;
using ChatServer.Protocol;
using ChatServer.Rooms;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace ChatServer.Hosting;

internal static class ChatServerRegistration
{
    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Issue 11: socket completions run on the socket event loop's thread (one per core) instead of being handed to a
    /// thread-pool worker: a client's frame is read, handled and its append written to Redis there, without the
    /// futex wake-up, the second worker the pool wakes "in case", and their context switches (~5 futex calls and a
    /// <c>sched_yield</c> per frame before; docs/benchmarks.md). The runtime reads only this environment variable, once,
    /// when the first socket is registered, so it is set here, at the top of <c>Main</c>, for this process only; the
    /// test hosts run in a process whose test code may block, and keep the default. Safe for the server because no
    /// socket continuation of ours blocks a thread. <c>Chat__InlineCompletions=false</c> (or the variable set to 0)
    /// keeps the runtime's default.
    /// <para>
    /// With inline completions the runtime runs one event loop per core; unless
    /// <c>DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT</c> says otherwise, the server runs one per two cores instead, as it
    /// runs one own Redis connection's thread per two cores (<see cref="RedisConnection.DefaultDirectConnections"/>):
    /// on two cores, one loop takes every client's frames, more of them per <c>epoll_wait</c>, with fewer wake-ups and
    /// context switches (+3 to +26 % deliveries per CPU-second at 2,500 msg/s with both, docs/benchmarks.md).
    /// </para>
    /// </summary>
    public static void PreferInlineSocketCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null
            && !string.Equals(Environment.GetEnvironmentVariable("Chat__InlineCompletions"), "false", StringComparison.OrdinalIgnoreCase))
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
            if (Environment.GetEnvironmentVariable(EventLoopsVariable) is null)
            {
                Environment.SetEnvironmentVariable(EventLoopsVariable, PerTwoCores.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    private const string EventLoopsVariable = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";

    /// <summary>
    /// One per two cores, at least one: the socket event loops the server asks for with inline completions, and (at
    /// most 8 of them) its own Redis connections (<see cref="RedisConnection.DefaultDirectConnections"/>).
    /// </summary>
    internal static int PerTwoCores => Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>Options and their validation, the listening port, console log format, the rooms' log, channel and presence store (Redis or in-process) and the connection parts.</summary>
    public static WebApplicationBuilder AddChatServer(this WebApplicationBuilder builder)
    {
        // Cloud Run (and our Dockerfile) say where to listen through PORT; without it, 8080 on every interface.
        var port = builder.Configuration["PORT"];
        if (!string.IsNullOrWhiteSpace(port) || string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.WebHost.UseUrls($"http://0.0.0.0:{(string.IsNullOrWhiteSpace(port) ? "8080" : port)}");
        }

        // Issue 11: a received frame is handled on the thread that completed the socket read, instead of being handed
        // through Kestrel's I/O queue and then the thread pool (two wake-ups per frame; ~16 % of the server's CPU per
        // delivery at 500 msg/s, docs/benchmarks.md). Safe here because nothing in the frame path blocks a thread.
        // Chat__InlineScheduling=false restores Kestrel's default.
        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling =
            builder.Configuration.GetValue($"{ChatOptions.Section}:InlineScheduling", true));

        // Fresh WebSocket upgrades to the chat path are taken before HTTP (DirectUpgrade); every other byte goes on to it.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(listen =>
            listen.Use(next => new DirectUpgrade(next, listen.ApplicationServices, ChatSocketEndpoint.Path).OnConnectedAsync)));

        // The official .NET images set DOTNET_RUNNING_IN_CONTAINER: there (Cloud Run) one JSON object per line, so Cloud
        // Logging reads severity and message; elsewhere the default plain text, which people read better.
        if (string.Equals(builder.Configuration["DOTNET_RUNNING_IN_CONTAINER"], "true", StringComparison.OrdinalIgnoreCase))
        {
            // The formatter has no options, so it is registered directly: AddConsoleFormatter<,> would bind options
            // for it through the reflection-based configuration binder, which trimming and Native AOT cannot keep.
            builder.Logging.AddConsole(console => console.FormatterName = CloudLoggingFormatter.FormatterName);
            builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ConsoleFormatter, CloudLoggingFormatter>());
        }

        var services = builder.Services;
        services.AddOptionsWithValidateOnStart<ChatOptions, ChatOptionsValidator>()
            .BindConfiguration(ChatOptions.Section)
            .Validate(o => o.CloseTimeout > TimeSpan.Zero && o.KeepAlive > o.CloseTimeout,
                "Chat:CloseTimeout must be positive and shorter than Chat:KeepAlive.")
            .Validate(o => o.PresenceTtl >= TimeSpan.FromSeconds(1), "Chat:PresenceTtl must be at least one second.")
            .Validate(o => o.HistoryTtl == TimeSpan.Zero || (o.HistoryTtl >= TimeSpan.FromSeconds(1) && o.HistoryTtl <= TimeSpan.FromDays(3_650)),
                "Chat:HistoryTtl must be 00:00:00 (keep rooms forever) or between one second and 3650 days.")
            .Validate(o => o.RepairRetryDelay > TimeSpan.Zero, "Chat:RepairRetryDelay must be positive.")
            .Validate(o => o.RateLimitBurst >= 1 && o.RateLimitPerSecond <= o.RateLimitBurst * 1_000,
                "Chat:RateLimitBurst must be at least 1.");
        // A PubSub value that is no mode name fails binding at start; a number outside the enum would bind, so check it.
        services.AddOptions<RedisOptions>()
            .BindConfiguration(RedisOptions.Section)
            .Configure<IConfiguration>((redis, configuration) =>
            {
                redis.Host ??= configuration["REDISHOST"];
                redis.Port ??= configuration["REDISPORT"];
            })
            .Validate(o => Enum.IsDefined(o.PubSub), "Redis:PubSub must be Classic or Sharded.")
            .Validate(o => o.DirectConnections is >= 0 and <= 64, "Redis:DirectConnections must be between 0 (one per two processors) and 64.")
            .Validate(o => o.BatchWindowMs is >= 0 and <= 1_000, "Redis:BatchWindowMs must be between 0 (send each read's deliveries at once) and 1000.")
            .ValidateOnStart();
        services.AddOptions<WebSocketOptions>().Configure<IOptions<ChatOptions>>((ws, chat) =>
            (ws.KeepAliveInterval, ws.KeepAliveTimeout) = (chat.Value.KeepAlive, chat.Value.KeepAlive));   // drop silent peers

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<RedisConnection>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisConnection>());
        services.AddSingleton<RoomKeys>();
        services.AddSingleton<InMemoryRoomChannel>();
        services.AddBackend<IMessageLog, RedisMessageLog, InMemoryMessageLog>();
        services.AddBackend<IRoomChannel, RedisRoomChannel, InMemoryRoomChannel>();
        services.AddBackend<IPresenceStore, RedisPresenceStore, InMemoryPresenceStore>();
        services.AddSingleton<RoomRegistry>();
        services.AddHostedService<RoomCatchUp>();
        services.AddSingleton<InstanceId>();
        services.AddSingleton<PresenceTracker>();
        services.AddHostedService<PresenceRefresher>();
        services.AddSingleton<FrameValidator>();
        services.AddSingleton<FrameDispatcher>();
        services.AddSingleton<OriginPolicy>();
        services.AddSingleton<ChatConnectionFactory>();
        services.AddSingleton<RawConnections>();
        services.AddSingleton<UpgradeGate>();
        return builder;
    }

    /// <summary>Registers <typeparamref name="TRedis"/> when Redis is configured, else the in-process <typeparamref name="TInProcess"/>.</summary>
    /// <remarks>The annotations keep both implementations' constructors through trimming (Native AOT) for ActivatorUtilities.</remarks>
    private static void AddBackend<TService,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TRedis,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TInProcess>(this IServiceCollection services)
        where TService : class
        where TRedis : TService
        where TInProcess : TService =>
        services.AddSingleton<TService>(sp => sp.GetRequiredService<RedisConnection>().IsConfigured
            ? ActivatorUtilities.CreateInstance<TRedis>(sp)
            : ActivatorUtilities.GetServiceOrCreateInstance<TInProcess>(sp));
}
