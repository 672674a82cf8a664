using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace ChatServer.Auth;

/// <summary>
/// One token issuer's signing keys and the check of a token against them, with the platform's libraries only (no JWT
/// crypto of our own): the discovery document (or a bare JWKS) through <see cref="ConfigurationManager{T}"/>, cached
/// and refreshed when a token names a key id it does not list (at most once per refresh interval), and
/// <see cref="JsonWebTokenHandler"/> for the signature and the claims the caller's parameters ask for. Client sign-in
/// (<see cref="TokenValidator"/>) and the server API's ID tokens each have one.
/// </summary>
internal sealed class IssuerKeys
{
    /// <summary>PROTOCOL.md: at most 30 s of clock skew for <c>nbf</c>/<c>exp</c> at validation.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    /// <summary>The only algorithms accepted: no <c>none</c>, no HMAC.</summary>
    public static readonly string[] Algorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];

    private readonly ConfigurationManager<OpenIdConnectConfiguration> _manager;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };

    /// <summary>Keys from <paramref name="issuer"/>'s discovery document, or from the JWKS at <paramref name="jwksUri"/> when given.</summary>
    public IssuerKeys(string issuer, string? jwksUri, bool requireHttps, TimeSpan refreshInterval)
    {
        var documents = new HttpDocumentRetriever { RequireHttps = requireHttps };
        _manager = string.IsNullOrWhiteSpace(jwksUri)
            ? new ConfigurationManager<OpenIdConnectConfiguration>($"{issuer.TrimEnd('/')}/.well-known/openid-configuration",
                new OpenIdConnectConfigurationRetriever(), documents)
            : new ConfigurationManager<OpenIdConnectConfiguration>(jwksUri, new JwksRetriever(), documents);
        _manager.RefreshInterval = refreshInterval;
    }

    /// <summary>Whether <paramref name="token"/> is shaped like a JWT at all.</summary>
    public bool CanReadToken(string token) => _handler.CanReadToken(token);

    /// <summary>
    /// Validates <paramref name="token"/> with <paramref name="parameters"/> (given the issuer's current configuration,
    /// whose <c>SigningKeys</c> they must use). <c>null</c> when the keys could not be loaded at all; a failed refresh
    /// after an unknown key id leaves the first result. Each load failure goes to <paramref name="keysUnavailable"/>.
    /// </summary>
    public async Task<TokenValidationResult?> ValidateAsync(string token, Func<OpenIdConnectConfiguration, TokenValidationParameters> parameters,
        Action<Exception> keysUnavailable, CancellationToken cancellationToken)
    {
        OpenIdConnectConfiguration configuration;
        try
        {
            configuration = await _manager.GetConfigurationAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or HttpRequestException)
        {
            keysUnavailable(ex);
            return null;
        }

        var result = await _handler.ValidateTokenAsync(token, parameters(configuration));
        if (result.Exception is SecurityTokenSignatureKeyNotFoundException)
        {
            // A key id the cached JWKS does not list: the issuer may have rotated its keys. The library refetches at most
            // once per RefreshInterval (blocking: see AuthRegistration), and a token whose key is still unknown is refused.
            _manager.RequestRefresh();
            try
            {
                var refreshed = await _manager.GetConfigurationAsync(cancellationToken);
                if (!ReferenceEquals(refreshed, configuration))
                {
                    result = await _handler.ValidateTokenAsync(token, parameters(refreshed));
                }
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or HttpRequestException)
            {
                keysUnavailable(ex);
            }
        }

        return result;
    }
}
