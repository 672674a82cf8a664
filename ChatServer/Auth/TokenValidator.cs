using ChatServer.Protocol;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace ChatServer.Auth;

/// <summary>
/// Validates client tokens (PROTOCOL.md, "Authentication") against the configured authority's keys
/// (<see cref="IssuerKeys"/>: discovery, JWKS, refresh on an unknown key id) for signature (RS256 and ES256 only),
/// issuer, audience and lifetime, then maps the identity's name and rooms.
/// </summary>
internal sealed class TokenValidator
{
    private readonly AuthOptions _options;
    private readonly FrameValidator _frames;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IssuerKeys? _keys;
    private readonly string[] _nameClaims;

    public TokenValidator(IOptions<AuthOptions> options, FrameValidator frames, TimeProvider time, ILogger<TokenValidator> logger)
    {
        _options = options.Value;
        _frames = frames;
        _time = time;
        _logger = logger;
        _nameClaims = string.IsNullOrWhiteSpace(_options.NameClaim) ? ["name", "email", "sub"] : [_options.NameClaim, "sub"];
        if (_options.Enabled)
        {
            _keys = new IssuerKeys(_options.Authority!, _options.JwksUri, _options.RequireHttpsMetadata, _options.KeyRefreshInterval);
        }
    }

    public bool Enabled => _keys is not null;

    public async Task<TokenCheck> ValidateAsync(string token, CancellationToken cancellationToken)
    {
        if (_keys is null)
        {
            return TokenCheck.Failed("disabled", "Authentication is not enabled on this server: sign in with a user name.");
        }

        var check = await ValidateCoreAsync(_keys, token, cancellationToken);
        if (check.Identity is null)
        {
            AuthLog.TokenRefused(_logger, check.Reason);
        }

        return check;
    }

    private async Task<TokenCheck> ValidateCoreAsync(IssuerKeys keys, string token, CancellationToken cancellationToken)
    {
        if (!keys.CanReadToken(token))
        {
            return Malformed;
        }

        var result = await keys.ValidateAsync(token, Parameters, ex => AuthLog.KeysUnavailable(_logger, _options.Authority!, ex), cancellationToken);
        return result is null ? KeysUnavailable : result.IsValid ? ToIdentity(result) : Refused(result.Exception);
    }

    private TokenValidationParameters Parameters(OpenIdConnectConfiguration configuration) => new()
    {
        ValidIssuer = _options.Authority,                 // exactly the configured authority, not whatever discovery says
        ValidAudience = _options.Audience,
        IssuerSigningKeys = configuration.SigningKeys,
        ValidAlgorithms = IssuerKeys.Algorithms,          // no none, no HMAC
        TryAllIssuerSigningKeys = false,                  // a key id the issuer does not list is refused, not guessed
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ValidateLifetime = true,
        ClockSkew = IssuerKeys.ClockSkew,
    };

    private TokenCheck ToIdentity(TokenValidationResult result)
    {
        var claims = result.ClaimsIdentity;
        var token = (JsonWebToken)result.SecurityToken;
        var expiresAt = new DateTimeOffset(token.ValidTo, TimeSpan.Zero);
        if (expiresAt <= _time.GetUtcNow())
        {
            // Inside the skew the library allows, but the connection would be closed at once (PROTOCOL.md: no skew at exp).
            return Expired;
        }

        var name = _nameClaims.Select(type => claims.FindFirst(type)?.Value).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
        if (name is null)
        {
            return TokenCheck.Failed("name", $"Authentication failed: the token has no name claim ({string.Join(", ", _nameClaims)}).");
        }

        if (_frames.ValidateUser(name, out var user) is { } nameError)
        {
            return TokenCheck.Failed("name", $"Authentication failed: the token's name cannot be used as a user name. {nameError}");
        }

        IReadOnlyList<string>? rooms = string.IsNullOrWhiteSpace(_options.RoomsClaim)
            ? null
            : [.. claims.FindAll(_options.RoomsClaim).Select(c => c.Value)];   // an array claim gives one claim per entry
        return TokenCheck.Valid(new AuthIdentity(user, expiresAt, rooms));
    }

    private static TokenCheck Refused(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException => Expired,
        SecurityTokenNotYetValidException => TokenCheck.Failed("not_yet_valid", "Authentication failed: the token is not valid yet (nbf)."),
        SecurityTokenInvalidAudienceException => TokenCheck.Failed("audience", "Authentication failed: the token's audience is not this service."),
        SecurityTokenInvalidIssuerException => TokenCheck.Failed("issuer", "Authentication failed: the token's issuer is not the configured authority."),
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException or SecurityTokenInvalidAlgorithmException
            => TokenCheck.Failed("signature", "Authentication failed: the token's signature could not be verified with the issuer's keys."),
        SecurityTokenNoExpirationException => TokenCheck.Failed("malformed", "Authentication failed: the token is malformed (it has no exp)."),
        _ => Malformed,
    };

    private static readonly TokenCheck Malformed =
        TokenCheck.Failed("malformed", "Authentication failed: the token is malformed (not a signed JWT).");

    private static readonly TokenCheck Expired = TokenCheck.Failed("expired", "Authentication failed: the token has expired; get a new one.");

    private static readonly TokenCheck KeysUnavailable = TokenCheck.Failed("keys_unavailable",
        "Authentication failed: the token issuer's keys could not be loaded; try again shortly.");
}
