using ChatServer.Auth;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

internal static class ChatSocketEndpoint
{
    /// <summary>The chat's WebSocket path.</summary>
    public const string Path = "/ws";

    /// <summary>
    /// <c>GET /ws</c> upgrades to a WebSocket. The checks every upgrade passes live here, in this order: a plain request
    /// gets 400, a foreign <c>Origin</c> 403 (cross-site hijacking), a stopping instance 503, a token that does not
    /// validate 401 (PROTOCOL.md "Authentication"), and a full instance 503 (<c>Chat:MaxConnections</c>). On SIGTERM
    /// open sockets are closed with 1012 so clients reconnect elsewhere.
    /// </summary>
    public static IEndpointConventionBuilder MapChatSocket(this IEndpointRouteBuilder endpoints, string pattern) =>
        endpoints.Map(pattern, HandleAsync);

    private static async Task HandleAsync(HttpContext context, ChatConnectionFactory factory, OriginPolicy origins,
        ChatAuthenticator authenticator, IHostApplicationLifetime lifetime, IOptions<ChatOptions> options, ILogger<ChatConnectionFactory> logger)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("Expected a WebSocket upgrade: connect with a WebSocket client to this URL.");
            return;
        }

        var request = context.Request;
        if (!origins.IsAllowed(request.Headers.Origin.ToString(), request.Headers["X-Forwarded-Proto"], request.Headers["X-Forwarded-Host"],
                request.Scheme, request.Host.Value ?? ""))
        {
            ConnectionLog.OriginRefused(logger, request.Headers.Origin.ToString());
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        var (refused, identity) = await authenticator.AuthenticateUpgradeAsync(request, context.RequestAborted);
        if (refused)
        {
            await ChatAuthenticator.RefuseAsync(context);
            return;
        }

        if (!factory.TryReserve())
        {
            ConnectionLog.ConnectionLimitReached(logger, options.Value.MaxConnections);
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        try
        {
            // The connection owns the socket from here, and disposes it only when that cannot cut off its Close.
            var socket = await context.WebSockets.AcceptWebSocketAsync();
            var wire = context.Features.Get<CloseLastStream>()
                ?? throw new InvalidOperationException("The WebSocket was not accepted through UseChatWebSockets().");
            await factory.RunAsync(socket, wire, identity, context.RequestAborted);
        }
        finally
        {
            factory.Release();
        }
    }
}
