using ChatServer.Api;
using ChatServer.Auth;
using ChatServer.Connections;
using ChatServer.History;
using ChatServer.Hosting;
using ChatServer.Webhooks;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    WebRootPath = Path.Combine(AppContext.BaseDirectory, "wwwroot"),   // the copy in build/publish output
});
builder.AddChatServer();        // options + validation, port, JSON logs in containers, rooms on Redis
                                // (StackExchange.Redis: per-room channels, capped history lists) or in process
builder.AddChatHistory();       // history reads and deletes; with History__ConnectionString, every message archived in PostgreSQL
builder.AddChatWebhooks();      // with Webhooks__Url, events POSTed (signed, retried) from a bounded outbox per instance
builder.AddChatMetrics();       // meter, /metrics for Prometheus, OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set
builder.AddChatAuth();          // optional sign-in with tokens (off without Auth__Authority)
builder.AddChatApi();           // the server API for the operator's backend (off without Api__Keys__0 or Api__Audience)

var app = builder.Build();
app.UseChatWebSockets();        // before the endpoint; keep-alive from ChatOptions; nothing leaves after a Close
app.UseChatPage();              // wwwroot (index.html at /) with a Content-Security-Policy
app.MapHealthEndpoints();       // /healthz, /readyz
app.MapChatMetrics();           // /metrics
app.MapAuthConfig();            // /auth/config: whether the page must get a token
app.MapChatApi();               // /api: messages (post, pages, search, delete, erase) and /api/openapi.json; 404 when off
app.MapChatSocket(ChatSocketEndpoint.Path);   // GET /ws: upgrades to a plain WebSocket; JSON frames to the rooms
app.Run();
