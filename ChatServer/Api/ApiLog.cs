namespace ChatServer.Api;

/// <summary>Never a key or a token: the reason word of a refusal, who called (a key's number or a service account), counts.</summary>
internal static partial class ApiLog
{
    /// <summary>The category of what the endpoints log (the authenticator logs under its own type).</summary>
    public const string Category = "ChatServer.Api";

    [LoggerMessage(1000, LogLevel.Information, "Server API on at /api ({Keys} keys, ID tokens {Tokens}).")]
    public static partial void Enabled(ILogger logger, int keys, string tokens);

    [LoggerMessage(1001, LogLevel.Information, "Server API request refused with 401 ({Reason}).")]
    public static partial void Refused(ILogger logger, string reason);

    [LoggerMessage(1002, LogLevel.Debug, "Server API request by {Caller}.")]
    public static partial void Accepted(ILogger logger, string caller);

    [LoggerMessage(1003, LogLevel.Warning, "The server API's ID token issuer's signing keys could not be loaded from {Issuer}.")]
    public static partial void KeysUnavailable(ILogger logger, string issuer, Exception exception);

    [LoggerMessage(1004, LogLevel.Information, "Server API by {Caller}: erased {Messages} messages of one user (complete: {Complete}).")]
    public static partial void Erased(ILogger logger, string caller, long messages, bool complete);

    [LoggerMessage(1005, LogLevel.Information, "Server API by {Caller}: deleted message {Seq} of epoch {Epoch} in room {Room}.")]
    public static partial void Deleted(ILogger logger, string caller, string room, string epoch, long seq);
}
