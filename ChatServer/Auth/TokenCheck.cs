namespace ChatServer.Auth;

/// <summary>
/// The outcome of validating one token: the <see cref="Identity"/>, or a <see cref="Reason"/> (one word, safe for logs and
/// metrics) and an <see cref="Error"/> sentence for the client. Neither ever contains the token.
/// </summary>
internal sealed record TokenCheck(AuthIdentity? Identity, string Reason, string Error)
{
    public static TokenCheck Valid(AuthIdentity identity) => new(identity, "", "");

    public static TokenCheck Failed(string reason, string error) => new(null, reason, error);
}
