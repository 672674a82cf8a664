using Microsoft.Extensions.Options;
using Npgsql;

namespace ChatServer.History;

/// <summary>The history parts a connection uses; the database's are <c>null</c> without <c>History:ConnectionString</c>.</summary>
internal sealed record RoomHistory(HistoryReader Reader, MessageDeleter Deleter, MessagePoster Poster);

internal static class HistoryRegistration
{
    /// <summary>
    /// History reads and deletes always; with <c>History:ConnectionString</c>, the PostgreSQL archive behind them: its
    /// data source, the writer that copies each stored message in batches, and the reconciler (which also applies
    /// retention). Without it, history is what the log keeps, as before.
    /// </summary>
    public static WebApplicationBuilder AddChatHistory(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<HistoryOptions>()
            .BindConfiguration(HistoryOptions.Section)
            .Validate(o => o.Retention >= TimeSpan.Zero, "History:Retention must be 00:00:00 (keep for good) or positive.")
            .Validate(o => o.BatchSize is >= 1 and <= 10_000, "History:BatchSize must be between 1 and 10000.")
            .Validate(o => o.BatchDelay >= TimeSpan.Zero && o.BatchDelay <= TimeSpan.FromSeconds(1), "History:BatchDelay must be between 00:00:00 and 00:00:01.")
            .Validate(o => o.QueueCapacity is >= 1 and <= 10_000_000, "History:QueueCapacity must be between 1 and 10000000.")
            .Validate(o => o.ReconcileInterval >= TimeSpan.FromMilliseconds(100), "History:ReconcileInterval must be at least 00:00:00.1.")
            .Validate(o => o.RetentionInterval >= TimeSpan.FromSeconds(1), "History:RetentionInterval must be at least one second.")
            .Validate(o => o.LagWarning > TimeSpan.Zero, "History:LagWarning must be positive.")
            .ValidateOnStart();

        var enabled = new HistoryOptions();
        builder.Configuration.GetSection(HistoryOptions.Section).Bind(enabled);
        if (enabled.IsEnabled)
        {
            // The slim builder keeps the native executable small; arrays carry a batch in one statement.
            services.AddSingleton(sp => new NpgsqlSlimDataSourceBuilder(sp.GetRequiredService<IOptions<HistoryOptions>>().Value.ConnectionString)
                .EnableArrays()
                .UseLoggerFactory(sp.GetRequiredService<ILoggerFactory>())
                .Build());
            services.AddSingleton<HistoryDatabase>();
            services.AddSingleton<ArchiveWriter>();
            services.AddHostedService(sp => sp.GetRequiredService<ArchiveWriter>());
            services.AddHostedService<ArchiveReconciler>();
        }

        services.AddSingleton(sp => new HistoryReader(sp.GetRequiredService<Rooms.IMessageLog>(), sp.GetService<HistoryDatabase>()));
        services.AddSingleton(sp => new MessageDeleter(sp.GetRequiredService<Rooms.IMessageLog>(), sp.GetRequiredService<Rooms.IRoomChannel>(),
            sp.GetRequiredService<HistoryReader>(), sp.GetService<HistoryDatabase>(), sp.GetService<ArchiveWriter>(), sp.GetService<Webhooks.WebhookOutbox>()));
        services.AddSingleton(sp => new MessagePoster(sp.GetRequiredService<Rooms.IMessageLog>(), sp.GetRequiredService<Rooms.RoomRegistry>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetService<ArchiveWriter>(), sp.GetService<Webhooks.WebhookOutbox>()));
        services.AddSingleton(sp => new RoomHistory(sp.GetRequiredService<HistoryReader>(), sp.GetRequiredService<MessageDeleter>(),
            sp.GetRequiredService<MessagePoster>()));
        return builder;
    }
}
