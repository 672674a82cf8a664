using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Webhooks;

internal static class WebhookRegistration
{
    /// <summary>
    /// With <c>Webhooks:Url</c>: the outbox (a hosted service), its named <see cref="HttpClient"/> and the users'
    /// presence across rooms that <c>user.offline</c> needs. Without it nothing of the webhooks is registered, and the
    /// chat paths see <c>null</c> (no queue, no extra Redis call).
    /// </summary>
    public static WebApplicationBuilder AddChatWebhooks(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<WebhookOptions>()
            .BindConfiguration(WebhookOptions.Section)
            .Validate(o => !o.IsEnabled || (Uri.TryCreate(o.Url, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"),
                "Webhooks:Url must be an absolute http:// or https:// URL.")
            .Validate(o => !o.IsEnabled || !string.IsNullOrEmpty(o.Secret),
                "Webhooks:Secret must be set when Webhooks:Url is: every event is signed with it.")
            .Validate(o => o.MaxAge >= TimeSpan.FromSeconds(1) && o.MaxAge <= TimeSpan.FromDays(7),
                "Webhooks:MaxAge must be between one second and seven days.")
            .Validate(o => o.QueueCapacity is >= 1 and <= 10_000_000, "Webhooks:QueueCapacity must be between 1 and 10000000.")
            .Validate(o => o.Timeout > TimeSpan.Zero && o.Timeout <= TimeSpan.FromMinutes(5), "Webhooks:Timeout must be positive and at most five minutes.")
            .Validate(o => o.RetryDelay > TimeSpan.Zero && o.MaxRetryDelay >= o.RetryDelay,
                "Webhooks:RetryDelay must be positive and Webhooks:MaxRetryDelay at least as long.")
            .Validate(o => o.Concurrency is >= 1 and <= 256, "Webhooks:Concurrency must be between 1 and 256.")
            .Validate(o => o.DrainTimeout >= TimeSpan.Zero, "Webhooks:DrainTimeout must be 00:00:00 or positive.")
            .ValidateOnStart();

        var enabled = new WebhookOptions();
        builder.Configuration.GetSection(WebhookOptions.Section).Bind(enabled);
        if (!enabled.IsEnabled)
        {
            return builder;
        }

        // No redirects (a 3xx is not a delivery: retried, then dropped), and none of the factory's request logging,
        // which would write the URL (its path or query may hold a token) at every attempt.
        services.AddHttpClient(WebhookOutbox.HttpClientName, (sp, client) => client.Timeout = sp.GetRequiredService<IOptions<WebhookOptions>>().Value.Timeout)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false })
            .RemoveAllLoggers();
        services.AddSingleton<WebhookOutbox>();
        services.AddHostedService(sp => sp.GetRequiredService<WebhookOutbox>());
        services.AddSingleton<IUserPresenceStore>(sp => sp.GetRequiredService<RedisConnection>().IsConfigured
            ? ActivatorUtilities.CreateInstance<RedisUserPresenceStore>(sp)
            : new InMemoryUserPresenceStore());
        services.AddSingleton<PresenceWebhooks>();
        return builder;
    }
}
