using ChatServer.Auth;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

internal static class ChatSocketEndpoint
{
    /// <summary>The chat's WebSocket path (the endpoint's pattern, and what <see cref="DirectUpgrade"/> takes).</summary>
    public const string Path = "/ws";

    /// <summary>
    /// <c>GET /ws</c> upgrades to a WebSocket; a plain request gets 400, a foreign <c>Origin</c> 403, and a full or
    /// stopping instance 503. On SIGTERM open sockets are closed with 1012 so clients reconnect elsewhere.
    /// </summary>
    public static IEndpointConventionBuilder MapChatSocket(this IEndpointRouteBuilder endpoints, string pattern) =>
        endpoints.Map(pattern, HandleAsync);

    private static async Task HandleAsync(HttpContext context, ChatConnectionFactory factory, UpgradeGate gate,
        IOptions<ChatOptions> options, ILogger<ChatConnectionFactory> logger)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("Expected a WebSocket upgrade: connect with a WebSocket client to this URL.");
            return;
        }

        var headers = context.Request.Headers;
        var (admission, identity) = await gate.AdmitAsync(name => headers[name].ToString(), context.Request.Scheme, log: true,
            context.RequestAborted);
        switch (admission)
        {
            case Admission.OriginRefused:
                ConnectionLog.OriginRefused(logger, headers.Origin.ToString());
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return;
            case Admission.Stopping:
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            case Admission.TokenRefused:   // PROTOCOL.md "Authentication": 401 and no upgrade
                await ChatAuthenticator.RefuseAsync(context);
                return;
            case Admission.Full:
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
            await factory.RunAsync(factory.CreateManaged(socket, wire), identity, context.RequestAborted);
        }
        finally
        {
            factory.Release();
        }
    }
}
