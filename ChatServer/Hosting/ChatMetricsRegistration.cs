using OpenTelemetry.Metrics;

namespace ChatServer.Hosting;

internal static class ChatMetricsRegistration
{
    /// <summary>
    /// The service's meter plus the runtime's and ASP.NET Core's built-in meters, exported for Prometheus and, when the
    /// standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> setting names a collector, over OTLP as well.
    /// </summary>
    public static WebApplicationBuilder AddChatMetrics(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ChatMetrics>();
        var exportOtlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        builder.Services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics.AddMeter(ChatMetrics.MeterName, "System.Runtime", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
                .AddPrometheusExporter();
            if (exportOtlp)
            {
                metrics.AddOtlpExporter();   // reads OTEL_EXPORTER_OTLP_* itself
            }
        });
        return builder;
    }

    /// <summary><c>GET /metrics</c> in the Prometheus text format.</summary>
    public static IEndpointRouteBuilder MapChatMetrics(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPrometheusScrapingEndpoint("/metrics");
        return endpoints;
    }
}
