namespace ChatServer.Api;

/// <summary>
/// The server API for the operator's own backend (docs/API.md, "Access"), bound from section <c>Api</c>
/// (<c>Api__Keys__0</c>, <c>Api__Audience</c>, …). Off, with every <c>/api/…</c> path a 404, while neither a key nor
/// an audience is set.
/// </summary>
internal sealed class ApiOptions
{
    public const string Section = "Api";

    /// <summary>The issuer of the ID tokens Cloud Run and other Google services send between services.</summary>
    public const string GoogleIssuer = "https://accounts.google.com";

    /// <summary>Shortest key accepted: a random secret, not a password.</summary>
    public const int MinKeyLength = 16;

    /// <summary>Bearer secrets (<c>Api__Keys__0</c>, <c>Api__Keys__1</c>, …): several, so one can be rotated in before the old one goes. Empty entries are ignored.</summary>
    public string[] Keys { get; set; } = [];

    /// <summary>The <c>aud</c> an ID token must carry (say, the service's URL); turns ID tokens on.</summary>
    public string? Audience { get; set; }

    /// <summary>The <c>iss</c> an ID token must carry; its discovery document names the signing keys.</summary>
    public string Issuer { get; set; } = GoogleIssuer;

    /// <summary>The <c>email</c> claims (service accounts) whose ID tokens are accepted; required with <see cref="Audience"/>.</summary>
    public string[] AllowedCallers { get; set; } = [];

    /// <summary><c>false</c> allows an <c>http://</c> issuer (loopback test issuers only).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>Shortest time between two key refreshes that tokens naming an unknown key id may cause.</summary>
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The keys that count (empty entries dropped).</summary>
    public IEnumerable<string> ActiveKeys => Keys.Where(k => !string.IsNullOrEmpty(k));

    public bool TokensEnabled => !string.IsNullOrWhiteSpace(Audience);

    public bool Enabled => ActiveKeys.Any() || TokensEnabled;
}
