namespace ChatServer.Api;

/// <summary>
/// The server API's door: every endpoint of the <c>/api</c> group runs behind it, so an endpoint group added later is
/// covered by being mapped there. It runs before a handler reads its body, so an unauthenticated caller learns nothing
/// but 401 (with <c>WWW-Authenticate: Bearer</c>, RFC 6750) and a problem+json saying what to send.
/// </summary>
internal static class ApiAccessFilter
{
    private const string CallerKey = "ChatServer.Api.Caller";

    public static async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var access = await http.RequestServices.GetRequiredService<ApiAuthenticator>().AuthenticateAsync(http.Request, http.RequestAborted);
        if (access.Caller is null)
        {
            http.Response.Headers.WWWAuthenticate = access.Reason == "missing" ? "Bearer" : "Bearer error=\"invalid_token\"";
            http.Response.Headers.CacheControl = "no-store";
            return ApiRequest.Problem(StatusCodes.Status401Unauthorized, access.Detail);
        }

        http.Items[CallerKey] = access.Caller;
        return await next(context);
    }

    /// <summary>Who made this request (a key's number or a service account), for logs.</summary>
    public static string CallerOf(HttpContext context) => context.Items[CallerKey] as string ?? "?";
}
