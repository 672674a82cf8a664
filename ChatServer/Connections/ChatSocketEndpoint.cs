using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

internal static class ChatSocketEndpoint
{
    /// <summary>
    /// <c>GET /ws</c> upgrades to a WebSocket; a plain request gets 400, a foreign <c>Origin</c> 403, and a full or
    /// stopping instance 503. On SIGTERM open sockets are closed with 1012 so clients reconnect elsewhere.
    /// </summary>
    public static IEndpointConventionBuilder MapChatSocket(this IEndpointRouteBuilder endpoints, string pattern) =>
        endpoints.Map(pattern, HandleAsync);

    private static async Task HandleAsync(HttpContext context, ChatConnectionFactory factory, FrameDispatcher dispatcher,
        OriginPolicy origins, IHostApplicationLifetime lifetime, IOptions<ChatOptions> options, ILogger<ChatConnectionFactory> logger)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("Expected a WebSocket upgrade: connect with a WebSocket client to this URL.");
            return;
        }

        if (!origins.IsAllowed(context.Request, out var origin))
        {
            ConnectionLog.OriginRefused(logger, origin);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
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
            using var session = factory.Create(socket, wire, context.RequestAborted);
            var connection = session.Connection;
            ConnectionLog.Opened(logger, connection.Id);
            using var stopping = lifetime.ApplicationStopping.Register(() => connection.RequestClose(ChatConnection.ServiceRestart));
            try
            {
                await connection.RunAsync((_, type, frame) => dispatcher.DispatchAsync(session, type, frame),
                    session.CloseAsync, context.RequestAborted);
            }
            finally
            {
                await session.CloseAsync();
            }
        }
        finally
        {
            factory.Release();
        }
    }
}
