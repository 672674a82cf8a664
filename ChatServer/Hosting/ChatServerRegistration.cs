using System.Diagnostics.CodeAnalysis;
using ChatServer.Connections;
using ChatServer.Moderation;
using ChatServer.Protocol;
using ChatServer.Rooms;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace ChatServer.Hosting;

internal static class ChatServerRegistration
{
    /// <summary>Options and their validation, the listening port, console log format, the rooms' log, channel and presence store (Redis or in-process) and the connection parts.</summary>
    public static WebApplicationBuilder AddChatServer(this WebApplicationBuilder builder)
    {
        // Cloud Run (and our Dockerfile) say where to listen through PORT; without it, 8080 on every interface.
        var port = builder.Configuration["PORT"];
        if (!string.IsNullOrWhiteSpace(port) || string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            builder.WebHost.UseUrls($"http://0.0.0.0:{(string.IsNullOrWhiteSpace(port) ? "8080" : port)}");
        }

        // A received frame is handled on the thread that completed the socket read, and a flushed frame is sent on the
        // thread that flushed it, instead of a hop through Kestrel's I/O queue and the thread pool each way. Safe here
        // because nothing in the frame path blocks a thread.
        builder.WebHost.UseSockets(sockets =>
        {
            sockets.UnsafePreferInlineScheduling = true;
            // A fixed kernel send buffer per socket (accepted sockets inherit the listener's) instead of one autotuned
            // up to megabytes: a client that stops reading is found after a bounded number of bytes (this, then
            // Chat:OutgoingQueueCapacity frames: 1008), and idle sockets cannot pin megabytes of kernel memory.
            sockets.CreateBoundListenSocket = endpoint =>
            {
                var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                socket.SendBufferSize = 64 * 1024;
                return socket;
            };
        });

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
            .Validate(o => o.IdempotencyWindow >= TimeSpan.FromSeconds(1) && o.IdempotencyWindow <= TimeSpan.FromDays(1),
                "Chat:IdempotencyWindow must be between one second and one day.")
            .Validate(o => o.RepairRetryDelay > TimeSpan.Zero, "Chat:RepairRetryDelay must be positive.")
            .Validate(o => o.WriteDelay >= TimeSpan.Zero && o.WriteDelay <= TimeSpan.FromSeconds(1),
                "Chat:WriteDelay must be between 00:00:00 (write at once) and 00:00:01.")
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
        services.AddSingleton<WriteDelay>();
        services.AddChatModeration();
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
