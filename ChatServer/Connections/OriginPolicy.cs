using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>
/// Cross-site WebSocket hijacking guard (PROTOCOL.md, "Connection life"): a browser always sends <c>Origin</c>, so an
/// upgrade from a page of another site is refused unless that site is on the allow-list. The service's own origin is
/// the one the request addressed, as a proxy such as Cloud Run's front end forwarded it.
/// </summary>
internal sealed class OriginPolicy(IOptions<ChatOptions> options)
{
    private readonly ChatOptions _options = options.Value;

    /// <summary>Whether an upgrade with these header values (and the request's own scheme and Host) may open a socket.</summary>
    public bool IsAllowed(string requestOrigin, string? forwardedProto, string? forwardedHost, string scheme, string host)
    {
        if (string.IsNullOrEmpty(requestOrigin))
        {
            return _options.AllowRequestsWithoutOrigin;
        }

        if (_options.AllowedOrigins.Any(allowed => allowed == "*" || SameOrigin(allowed, requestOrigin)))
        {
            return true;
        }

        return SameOrigin($"{First(forwardedProto) ?? scheme}://{First(forwardedHost) ?? host}", requestOrigin);
    }

    private static string? First(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var comma = value.IndexOf(',', StringComparison.Ordinal);   // the client-most value of a proxy chain
        return (comma < 0 ? value : value[..comma]).Trim();
    }

    /// <summary>Scheme, host and port equal; default ports may be written or left out.</summary>
    private static bool SameOrigin(string a, string b) =>
        Uri.TryCreate(a, UriKind.Absolute, out var x) && Uri.TryCreate(b, UriKind.Absolute, out var y)
        && string.Equals(x.Scheme, y.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(x.IdnHost, y.IdnHost, StringComparison.OrdinalIgnoreCase)
        && x.Port == y.Port;
}
