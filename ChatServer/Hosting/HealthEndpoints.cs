using ChatServer.Rooms;

namespace ChatServer.Hosting;

internal static class HealthEndpoints
{
    /// <summary><c>/healthz</c>: the process runs. <c>/readyz</c>: messages can be stored and delivered now.</summary>
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/healthz", () => Results.Text("ok"));
        endpoints.MapGet("/readyz", (IMessageLog log, IHostApplicationLifetime lifetime) =>
            log.IsAvailable && !lifetime.ApplicationStopping.IsCancellationRequested
                ? Results.Text("ready")
                : Results.Text("not ready: the message store is unreachable or the server is stopping", statusCode: 503));
        return endpoints;
    }
}
