namespace ChatServer.Auth;

/// <summary>
/// Optional sign-in with tokens (docs/PROTOCOL.md, "Authentication (optional, protocol 1.1)"). Bound from section
/// <c>Auth</c> (<c>Auth__Authority</c>, …). Off while <see cref="Authority"/> is unset: then v1 behaviour is unchanged.
/// </summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary>OpenID Connect issuer URL; turns authentication on. Tokens' <c>iss</c> must equal it.</summary>
    public string? Authority { get; set; }

    /// <summary>
    /// Optional: read the signing keys from this JWKS URL instead of the authority's discovery document (IAP publishes
    /// none: <c>https://www.gstatic.com/iap/verify/public_key-jwk</c>).
    /// </summary>
    public string? JwksUri { get; set; }

    /// <summary>Required <c>aud</c> (for Firebase / Identity Platform: the project id).</summary>
    public string? Audience { get; set; }

    /// <summary>Claim shown as <c>user</c>; unset: <c>name</c>, then <c>email</c>, then <c>sub</c>.</summary>
    public string? NameClaim { get; set; }

    /// <summary>Optional claim listing the rooms the identity may join (<c>team-*</c>, <c>*</c>). Unset: every room.</summary>
    public string? RoomsClaim { get; set; }

    /// <summary>Optional upgrade-request header carrying a bare JWT (IAP: <c>X-Goog-IAP-JWT-Assertion</c>).</summary>
    public string? Header { get; set; }

    /// <summary><c>false</c> allows an <c>http://</c> authority (loopback test issuers only).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>
    /// Shortest time between two key refreshes that tokens naming an unknown key id may cause (the library's
    /// <c>RefreshInterval</c>), so a stream of forged key ids cannot hammer the issuer.
    /// </summary>
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    public bool Enabled => !string.IsNullOrWhiteSpace(Authority);
}
