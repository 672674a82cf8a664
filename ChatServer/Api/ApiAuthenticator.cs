using System.Security.Cryptography;
using System.Text;
using ChatServer.Auth;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace ChatServer.Api;

/// <summary>
/// Who may call the server API (docs/API.md, "Access"): <c>Authorization: Bearer &lt;secret&gt;</c> where the secret is
/// one of <see cref="ApiOptions.Keys"/>, or an ID token of <see cref="ApiOptions.Issuer"/> for
/// <see cref="ApiOptions.Audience"/> whose <c>email</c> is one of <see cref="ApiOptions.AllowedCallers"/>. Keys are
/// compared as SHA-256 hashes in constant time, every key every time, so neither a key's content nor its length nor
/// which key matched shows in the time taken. Nothing here logs or returns a credential.
/// </summary>
internal sealed class ApiAuthenticator
{
    private readonly ApiOptions _options;
    private readonly ILogger _logger;
    private readonly byte[][] _keyHashes;
    private readonly IssuerKeys? _issuer;
    private readonly string[] _issuers;
    private readonly HashSet<string> _callers;

    public ApiAuthenticator(IOptions<ApiOptions> options, ILogger<ApiAuthenticator> logger)
    {
        _options = options.Value;
        _logger = logger;
        _keyHashes = [.. _options.ActiveKeys.Select(Hash)];
        _callers = new(_options.AllowedCallers.Where(c => !string.IsNullOrWhiteSpace(c)).Select(c => c.Trim()), StringComparer.OrdinalIgnoreCase);
        // Google documents both spellings of its ID tokens' iss.
        _issuers = _options.Issuer == ApiOptions.GoogleIssuer ? [ApiOptions.GoogleIssuer, "accounts.google.com"] : [_options.Issuer];
        if (_options.TokensEnabled)
        {
            _issuer = new IssuerKeys(_options.Issuer, jwksUri: null, _options.RequireHttpsMetadata, _options.KeyRefreshInterval);
        }
    }

    /// <summary>Checks the request's credentials; the refusal's detail says what to fix, never what was sent.</summary>
    public async Task<ApiAccess> AuthenticateAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var access = await CheckAsync(request, cancellationToken);
        if (access.Caller is { } caller)
        {
            ApiLog.Accepted(_logger, caller);
        }
        else
        {
            ApiLog.Refused(_logger, access.Reason);
        }

        return access;
    }

    private async Task<ApiAccess> CheckAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var header = request.Headers.Authorization;
        if (header.Count == 0)
        {
            return ApiAccess.Refused("missing", "Send Authorization: Bearer <API key or ID token>.");
        }

        const string scheme = "Bearer ";
        var value = header.Count == 1 ? header[0] : null;
        if (value is null || value.Length <= scheme.Length || !value.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return ApiAccess.Refused("scheme", "The Authorization header must be one 'Bearer <API key or ID token>'.");
        }

        var credential = value[scheme.Length..].Trim();
        if (MatchesKey(credential) is { } key)
        {
            return ApiAccess.Allowed($"key {key}");
        }

        if (_issuer is null || !_issuer.CanReadToken(credential))
        {
            return _keyHashes.Length > 0
                ? ApiAccess.Refused("key", "The bearer credential is not an API key of this server.")
                : ApiAccess.Refused("malformed", "The bearer credential is not an ID token (a signed JWT).");
        }

        return await CheckTokenAsync(_issuer, credential, cancellationToken);
    }

    /// <summary>The number of the key <paramref name="credential"/> is, or <c>null</c>; looks at every key whatever it finds.</summary>
    private int? MatchesKey(string credential)
    {
        var hash = Hash(credential);
        var found = -1;
        for (var i = 0; i < _keyHashes.Length; i++)
        {
            var equal = CryptographicOperations.FixedTimeEquals(hash, _keyHashes[i]);
            found = equal && found < 0 ? i : found;
        }

        return found < 0 ? null : found;
    }

    private async Task<ApiAccess> CheckTokenAsync(IssuerKeys issuer, string token, CancellationToken cancellationToken)
    {
        var result = await issuer.ValidateAsync(token, Parameters, ex => ApiLog.KeysUnavailable(_logger, _options.Issuer, ex), cancellationToken);
        if (result is null)
        {
            return ApiAccess.Refused("keys_unavailable", "The ID token issuer's keys could not be loaded; try again shortly.");
        }

        if (!result.IsValid)
        {
            return result.Exception switch
            {
                SecurityTokenExpiredException => ApiAccess.Refused("expired", "The ID token has expired; get a new one."),
                SecurityTokenNotYetValidException => ApiAccess.Refused("not_yet_valid", "The ID token is not valid yet (nbf)."),
                SecurityTokenInvalidAudienceException => ApiAccess.Refused("audience", "The ID token's audience is not this service (Api__Audience)."),
                SecurityTokenInvalidIssuerException => ApiAccess.Refused("issuer", "The ID token's issuer is not Api__Issuer."),
                SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException or SecurityTokenInvalidAlgorithmException
                    => ApiAccess.Refused("signature", "The ID token's signature could not be verified with the issuer's keys."),
                _ => ApiAccess.Refused("malformed", "The bearer credential is not a valid ID token."),
            };
        }

        var claims = result.ClaimsIdentity;
        var email = claims.FindFirst("email")?.Value;
        if (string.IsNullOrWhiteSpace(email))
        {
            return ApiAccess.Refused("no_email", "The ID token has no email claim; it must name the calling service account.");
        }

        if (string.Equals(claims.FindFirst("email_verified")?.Value, "false", StringComparison.OrdinalIgnoreCase))
        {
            return ApiAccess.Refused("email_unverified", "The ID token's email is not verified.");
        }

        return _callers.Contains(email)
            ? ApiAccess.Allowed(email)
            : ApiAccess.Refused("caller", $"The ID token's caller '{email}' is not in Api__AllowedCallers.");
    }

    private TokenValidationParameters Parameters(OpenIdConnectConfiguration configuration) => new()
    {
        ValidIssuers = _issuers,
        ValidAudience = _options.Audience,
        IssuerSigningKeys = configuration.SigningKeys,
        ValidAlgorithms = IssuerKeys.Algorithms,
        TryAllIssuerSigningKeys = false,
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ValidateLifetime = true,
        ClockSkew = IssuerKeys.ClockSkew,
    };

    private static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));
}

/// <summary>The outcome of a credential check: the <see cref="Caller"/> (for logs), or why not.</summary>
internal sealed record ApiAccess(string? Caller, string Reason, string Detail)
{
    public static ApiAccess Allowed(string caller) => new(caller, "", "");

    public static ApiAccess Refused(string reason, string detail) => new(null, reason, detail);
}
