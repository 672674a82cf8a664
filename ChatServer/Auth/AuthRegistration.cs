
namespace ChatServer.Auth;

internal static class AuthRegistration
{
    /// <summary>
    /// Optional sign-in (PROTOCOL.md, "Authentication"): options validated at start, the token validator and the
    /// per-connection identities. Off while <c>Auth:Authority</c> is unset.
    /// </summary>
    public static WebApplicationBuilder AddChatAuth(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>()
            .BindConfiguration(AuthOptions.Section)
            .Validate(o => !o.Enabled || !string.IsNullOrWhiteSpace(o.Audience),
                "Auth:Audience is required when Auth:Authority is set.")
            .Validate(o => !o.Enabled || (Uri.TryCreate(o.Authority, UriKind.Absolute, out var uri)
                    && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && !o.RequireHttpsMetadata))),
                "Auth:Authority must be an absolute https:// URL (http:// only with Auth:RequireHttpsMetadata=false).")
            .Validate(o => string.IsNullOrWhiteSpace(o.JwksUri) || (Uri.TryCreate(o.JwksUri, UriKind.Absolute, out var uri)
                    && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && !o.RequireHttpsMetadata))),
                "Auth:JwksUri must be an absolute https:// URL (http:// only with Auth:RequireHttpsMetadata=false).")
            .Validate(o => o.KeyRefreshInterval >= TimeSpan.FromSeconds(1), "Auth:KeyRefreshInterval must be at least one second.")
            .ValidateOnStart();
        builder.Services.AddSingleton<TokenValidator>();
        builder.Services.AddSingleton<ChatAuthenticator>();

        // IdentityModel 8 refreshes keys in the background by default, so the token that named a rotated-in key id would
        // be refused once. Blocking makes the refresh that key id causes (at most once per KeyRefreshInterval) finish
        // before that same token is checked again. Process-wide, and the same value every time.
        AppContext.SetSwitch("Switch.Microsoft.IdentityModel.UpdateConfigAsBlocking", true);
        return builder;
    }

    /// <summary>
    /// <c>GET /auth/config</c> (this server's addition): whether tokens are required, and the identity a token in the
    /// request's headers proves (behind IAP the proxy adds one to every request), so the page knows what to do.
    /// </summary>
    public static IEndpointConventionBuilder MapAuthConfig(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapGet("/auth/config", async (HttpContext context, ChatAuthenticator authenticator) =>
        {
            var (_, identity) = await authenticator.AuthenticateUpgradeAsync(context.Request, context.RequestAborted);
            context.Response.Headers.CacheControl = "no-store";
            return TypedResults.Json(new AuthStatus(authenticator.Enabled, identity?.User), AuthJsonContext.Default.AuthStatus);
        });
}
