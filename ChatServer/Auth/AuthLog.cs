namespace ChatServer.Auth;

/// <summary>Never a token: only the reason word a <see cref="TokenCheck"/> carries.</summary>
internal static partial class AuthLog
{
    [LoggerMessage(601, LogLevel.Debug, "Token refused ({Reason}).")]
    public static partial void TokenRefused(ILogger logger, string reason);

    [LoggerMessage(602, LogLevel.Warning, "The token issuer's signing keys could not be loaded from {Authority}.")]
    public static partial void KeysUnavailable(ILogger logger, string authority, Exception exception);

    [LoggerMessage(603, LogLevel.Information, "Upgrade refused with 401: the token did not validate ({Reason}).")]
    public static partial void UpgradeRefused(ILogger logger, string reason);

    [LoggerMessage(604, LogLevel.Debug, "Connection {ConnectionId}: token expired; closing with 4001.")]
    public static partial void Expired(ILogger logger, string connectionId);

    [LoggerMessage(605, LogLevel.Information, "Connection {ConnectionId}: {Failures} failed auth frames; closing with 1008.")]
    public static partial void TooManyFailures(ILogger logger, string connectionId, int failures);
}
