using ChatServer.Hosting;
using ChatServer.Rooms;

namespace ChatServer.Moderation;

internal static class ModerationRegistration
{
    /// <summary>Bans and the moderation bus: on Redis when it is configured (every instance), else in process.</summary>
    public static IServiceCollection AddChatModeration(this IServiceCollection services)
    {
        services.AddSingleton<IBanStore>(sp => sp.GetRequiredService<RedisConnection>().IsConfigured
            ? new RedisBanStore(sp.GetRequiredService<RedisConnection>(), sp.GetRequiredService<RoomKeys>(), sp.GetRequiredService<TimeProvider>())
            : new InMemoryBanStore(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new RedisModerationBus(sp.GetRequiredService<RedisConnection>(), sp.GetRequiredService<RoomKeys>(),
            sp.GetRequiredService<RoomRegistry>(), sp.GetRequiredService<InstanceId>(), sp.GetRequiredService<ILogger<RedisModerationBus>>()));
        services.AddSingleton<IModerationBus>(sp => sp.GetRequiredService<RedisConnection>().IsConfigured
            ? sp.GetRequiredService<RedisModerationBus>()
            : new LocalModerationBus(sp.GetRequiredService<RoomRegistry>()));
        services.AddHostedService<ModerationListener>();
        return services;
    }
}

/// <summary>Runs the Redis bus's listener when Redis is configured; nothing to listen to in process.</summary>
internal sealed class ModerationListener(IServiceProvider services, RedisConnection connection) : IHostedService
{
    private RedisModerationBus? _bus;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!connection.IsConfigured)
        {
            return Task.CompletedTask;
        }

        _bus = services.GetRequiredService<RedisModerationBus>();
        return _bus.StartAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => _bus?.StopAsync(cancellationToken) ?? Task.CompletedTask;
}
