using System.Text.RegularExpressions;

namespace ChatServer.Hosting;

internal static partial class ChatPage
{
    /// <summary>
    /// Serves <c>wwwroot</c> (<c>/</c> is <c>index.html</c>) with a Content-Security-Policy that lets the page load only
    /// its own scripts, styles and images and open WebSockets only to its own host: an injected string can neither run
    /// script nor send the chat elsewhere.
    /// </summary>
    public static WebApplication UseChatPage(this WebApplication app)
    {
        app.UseDefaultFiles();
        app.UseStaticFiles(new StaticFileOptions
        {
            OnPrepareResponse = context =>
            {
                var headers = context.Context.Response.Headers;
                headers.ContentSecurityPolicy = Policy(context.Context.Request.Host.Value);
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer";
            },
        });
        return app;
    }

    /// <summary>
    /// <c>connect-src 'self'</c> covers same-origin <c>ws:</c>/<c>wss:</c> only in browsers that follow CSP Level 3, so
    /// the page's own host is also named with both WebSocket schemes (wss behind Cloud Run's TLS, ws on a laptop).
    /// </summary>
    public static string Policy(string? host)
    {
        var ownSocket = host is not null && HostPattern().IsMatch(host) ? $" ws://{host} wss://{host}" : "";
        return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            + $"connect-src 'self'{ownSocket}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    }

    // Host names, IPv4/IPv6 literals and a port; anything else (it comes from the request) is left out of the header.
    [GeneratedRegex(@"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")]
    private static partial Regex HostPattern();
}
