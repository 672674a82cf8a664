using ChatServer.Auth;

namespace ChatServer.Connections;

internal enum Admission
{
    Admitted,
    OriginRefused,
    Stopping,
    TokenRefused,
    Full,
}

/// <summary>
/// The checks every WebSocket upgrade passes, in this order, whichever path carries it: the origin (cross-site
/// hijacking), the instance not stopping, the upgrade's token (PROTOCOL.md "Authentication"), and a slot under
/// <c>Chat:MaxConnections</c>. One place for both the <c>/ws</c> endpoint, which answers each refusal, and
/// <see cref="DirectUpgrade"/>, which hands every refusal on to the endpoint.
/// </summary>
internal sealed class UpgradeGate(OriginPolicy origins, IHostApplicationLifetime lifetime, ChatAuthenticator authenticator,
    ChatConnectionFactory factory)
{
    /// <summary>
    /// <see cref="Admission.Admitted"/> reserves a connection slot: the caller releases it with
    /// <see cref="ChatConnectionFactory.Release"/>. <paramref name="header"/> reads a request header (null or empty when
    /// absent); <paramref name="scheme"/> is the request's own. <paramref name="log"/>: whether a refused token is logged
    /// and counted (not by a caller that hands the request on to be checked again).
    /// </summary>
    public async Task<(Admission Admission, AuthIdentity? Identity)> AdmitAsync(Func<string, string?> header, string scheme, bool log,
        CancellationToken cancellationToken)
    {
        if (!origins.IsAllowed(header("Origin") ?? "", header("X-Forwarded-Proto"), header("X-Forwarded-Host"), scheme, header("Host") ?? ""))
        {
            return (Admission.OriginRefused, null);
        }

        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return (Admission.Stopping, null);
        }

        var (refused, identity) = await authenticator.AuthenticateUpgradeAsync(header, log, cancellationToken);
        if (refused)
        {
            return (Admission.TokenRefused, null);
        }

        return factory.TryReserve() ? (Admission.Admitted, identity) : (Admission.Full, null);
    }
}
