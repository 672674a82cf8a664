using ChatServer.Connections;
using ChatServer.Hosting;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    WebRootPath = Path.Combine(AppContext.BaseDirectory, "wwwroot"),   // the copy in build/publish output
});
builder.AddChatServer();        // options + validation, port, Redis or in-process bus, room registry

var app = builder.Build();
app.UseWebSockets();            // before the endpoint; keep-alive comes from ChatOptions
app.UseDefaultFiles();
app.UseStaticFiles();
app.MapHealthEndpoints();       // /healthz, /readyz
app.MapChatSocket("/ws");
app.Run();
