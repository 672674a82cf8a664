using ChatServer.Connections;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Auth;

/// <summary>
/// The upgrade's side of authentication (PROTOCOL.md): a token in <c>Authorization: Bearer</c> or in the configured
/// header must validate, else 401 and no upgrade; none at all is upgraded (the client may send <c>auth</c>). Makes each
/// connection's <see cref="ConnectionAuth"/>. Does nothing while authentication is off.
/// </summary>
internal sealed class ChatAuthenticator(TokenValidator validator, IOptions<AuthOptions> options, TimeProvider time,
    ChatMetrics metrics, ILogger<ChatAuthenticator> logger)
{
    private readonly string? _header = string.IsNullOrWhiteSpace(options.Value.Header) ? null : options.Value.Header;

    public bool Enabled => validator.Enabled;

    /// <summary>The upgrade's token, checked: <c>Refused</c> means answer 401; <c>Identity</c> is null when none came.</summary>
    public async Task<(bool Refused, AuthIdentity? Identity)> AuthenticateUpgradeAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!Enabled || ReadToken(request.Headers) is not { } token)
        {
            return (false, null);
        }

        var check = await validator.ValidateAsync(token, cancellationToken);
        if (check.Identity is null)
        {
            AuthLog.UpgradeRefused(logger, check.Reason);
            metrics.FrameRejected("auth_upgrade_" + check.Reason);
        }

        return (check.Identity is null, check.Identity);
    }

    /// <summary>Answers a refused upgrade: 401 with RFC 6750's challenge, naming the reason but never the token.</summary>
    public static Task RefuseAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        return context.Response.WriteAsync("The token on the upgrade request did not validate.");
    }

    /// <summary>The connection's identity state, or <c>null</c> while authentication is off.</summary>
    public ConnectionAuth? Attach(ChatConnection connection, AuthIdentity? identity) =>
        Enabled ? new ConnectionAuth(validator, connection, identity, time, metrics, logger) : null;

    /// <summary>The configured header (a bare JWT) first, then <c>Authorization: Bearer</c>; never the URL.</summary>
    private string? ReadToken(IHeaderDictionary headers)
    {
        if (_header is not null && headers[_header].ToString() is { Length: > 0 } bare)
        {
            return bare.Trim();
        }

        var authorization = headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && authorization.Length > 7
            ? authorization[7..].Trim()
            : null;
    }
}
