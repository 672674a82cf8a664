using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ChatServer.Tests;

/// <summary>
/// An OpenID Connect issuer for the tests: a real Kestrel host on 127.0.0.1 serving
/// <c>/.well-known/openid-configuration</c> and a JWKS of keys generated here (one RSA key for RS256, one P-256 key for
/// ES256), and minting tokens with them. <see cref="RotateKeys"/> replaces both keys, as an issuer rotating keys does.
/// Every token it mints is remembered, so tests can check that no log line ever holds one.
/// </summary>
public sealed class TestIssuer : IAsyncDisposable
{
    public const string Audience = "chat-test-project";

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<string> _minted = new();
    private volatile SigningCredentials[] _keys;
    private long _jwksServedTicks;

    private TestIssuer(WebApplication app)
    {
        _app = app;
        _keys = NewKeys();
    }

    public string Authority { get; private set; } = "";

    /// <summary>Every token minted so far (valid or not).</summary>
    public IReadOnlyCollection<string> Minted => _minted;

    /// <summary>How many times the JWKS was fetched.</summary>
    public int JwksRequests => _jwksRequests;

    /// <summary>When the JWKS was last served.</summary>
    public DateTimeOffset JwksServedAt => new(Interlocked.Read(ref _jwksServedTicks), TimeSpan.Zero);

    private int _jwksRequests;

    public static async Task<TestIssuer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "TestIssuer" });
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var issuer = new TestIssuer(app);
        app.MapGet("/.well-known/openid-configuration", () => Results.Text(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["issuer"] = issuer.Authority,
            ["jwks_uri"] = $"{issuer.Authority}/jwks",
            ["id_token_signing_alg_values_supported"] = new[] { "RS256", "ES256" },
        }), "application/json"));
        app.MapGet("/jwks", () =>
        {
            Interlocked.Increment(ref issuer._jwksRequests);
            Interlocked.Exchange(ref issuer._jwksServedTicks, DateTimeOffset.UtcNow.UtcTicks);
            return Results.Text(issuer.Jwks(), "application/json");
        });
        await app.StartAsync();
        issuer.Authority = $"http://127.0.0.1:{new Uri(app.Urls.First()).Port}";
        return issuer;
    }

    /// <summary>The issuer publishes two new keys and drops the old ones.</summary>
    public void RotateKeys() => _keys = NewKeys();

    /// <summary>
    /// A token. <paramref name="alg"/> picks the published key (RS256 or ES256); <paramref name="signWith"/> overrides it
    /// (a key the issuer does not publish, an HMAC key). Claims beyond the standard ones come from <paramref name="claims"/>.
    /// </summary>
    public string Mint(string? name = "Alice Doe", TimeSpan? lifetime = null, string alg = SecurityAlgorithms.RsaSha256,
        string? audience = Audience, string? issuer = null, IDictionary<string, object>? claims = null,
        SigningCredentials? signWith = null, string? subject = null, bool anyRoom = true)
    {
        var now = DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromMinutes(10));
        var payload = new Dictionary<string, object>(claims ?? new Dictionary<string, object>())
        {
            ["sub"] = subject ?? $"uid-{Guid.NewGuid():N}",
        };
        if (anyRoom)
        {
            payload.TryAdd("rooms", "*");   // the test hosts set Auth:RoomsClaim; without the claim, no room
        }

        if (name is not null)
        {
            payload["name"] = name;
        }

        var token = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Authority,
            Audience = audience,
            IssuedAt = expires < now ? expires.AddMinutes(-10) : now,
            NotBefore = expires < now ? expires.AddMinutes(-10) : now.AddSeconds(-1),
            Expires = expires,
            Claims = payload,
            SigningCredentials = signWith ?? _keys.First(k => k.Algorithm == alg),
        });
        _minted.Enqueue(token);
        return token;
    }

    /// <summary>A token with <c>"alg":"none"</c> and no signature, built by hand (no library will make one).</summary>
    public string MintUnsigned(string name = "Alice Doe")
    {
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");
        var exp = DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeSeconds();
        var payload = Base64UrlEncoder.Encode(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["iss"] = Authority, ["aud"] = Audience, ["sub"] = "uid-none", ["name"] = name, ["exp"] = exp,
            ["nbf"] = exp - 700, ["iat"] = exp - 700,
        }));
        var token = $"{header}.{payload}.";
        _minted.Enqueue(token);
        return token;
    }

    /// <summary>
    /// The classic algorithm-confusion attack: HS256 keyed with the bytes of the issuer's published RSA public key, under
    /// that key's kid, hoping a verifier uses the public key as an HMAC secret.
    /// </summary>
    public string MintHmacWithPublicKey()
    {
        var rsa = (RsaSecurityKey)_keys.First(k => k.Algorithm == SecurityAlgorithms.RsaSha256).Key;
        var publicKey = Encoding.UTF8.GetBytes(rsa.Rsa.ExportSubjectPublicKeyInfoPem());
        var hmac = new SigningCredentials(new SymmetricSecurityKey(publicKey) { KeyId = rsa.KeyId }, SecurityAlgorithms.HmacSha256);
        return Mint(signWith: hmac);
    }

    /// <summary>A key that is not in the JWKS, under a kid the issuer never listed.</summary>
    public static SigningCredentials UnpublishedKey() =>
        new(new RsaSecurityKey(RSA.Create(2048)) { KeyId = $"unknown-{Guid.NewGuid():N}" }, SecurityAlgorithms.RsaSha256);

    /// <summary>A valid token with one character of its signature changed.</summary>
    public string MintWithBadSignature()
    {
        var token = Mint();
        var last = token[^2] == 'A' ? 'B' : 'A';   // the second-to-last character: every one of its bits is signature
        var tampered = string.Concat(token.AsSpan(0, token.Length - 2), last.ToString(), token[^1].ToString());
        _minted.Enqueue(tampered);
        return tampered;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private string Jwks()
    {
        var keys = new List<Dictionary<string, string>>();
        foreach (var credentials in _keys)
        {
            switch (credentials.Key)
            {
                case RsaSecurityKey rsa:
                    var rsaParameters = rsa.Rsa.ExportParameters(false);
                    keys.Add(new()
                    {
                        ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = rsa.KeyId!,
                        ["n"] = Base64UrlEncoder.Encode(rsaParameters.Modulus), ["e"] = Base64UrlEncoder.Encode(rsaParameters.Exponent),
                    });
                    break;
                case ECDsaSecurityKey ec:
                    var ecParameters = ec.ECDsa.ExportParameters(false);
                    keys.Add(new()
                    {
                        ["kty"] = "EC", ["use"] = "sig", ["alg"] = "ES256", ["kid"] = ec.KeyId!, ["crv"] = "P-256",
                        ["x"] = Base64UrlEncoder.Encode(ecParameters.Q.X), ["y"] = Base64UrlEncoder.Encode(ecParameters.Q.Y),
                    });
                    break;
            }
        }

        return JsonSerializer.Serialize(new { keys });
    }

    private static SigningCredentials[] NewKeys() =>
    [
        new(new RsaSecurityKey(RSA.Create(2048)) { KeyId = $"rsa-{Guid.NewGuid():N}" }, SecurityAlgorithms.RsaSha256),
        new(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = $"ec-{Guid.NewGuid():N}" }, SecurityAlgorithms.EcdsaSha256),
    ];
}
