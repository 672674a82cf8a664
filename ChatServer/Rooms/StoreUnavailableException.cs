namespace ChatServer.Rooms;

/// <summary>
/// The message store could not complete an operation. <see cref="OutcomeUnknown"/>: the request may have reached the
/// store before the answer was lost, so a message may or may not have been stored; otherwise nothing was.
/// </summary>
internal sealed class StoreUnavailableException(string message, Exception? inner = null, bool outcomeUnknown = false)
    : Exception(message, inner)
{
    public const string ClientError = "The message store is unavailable; nothing was stored. Try again shortly.";

    public const string UnknownOutcomeError =
        "The message store did not answer; the message may or may not have been stored. Check the room's history before sending it again.";

    /// <summary>The same for a message sent with a key (protocol 1.2): a resend with that key cannot store it twice.</summary>
    public const string UnknownOutcomeWithKeyError =
        "The message store did not answer; the message may or may not have been stored; send it again with the same key.";

    public bool OutcomeUnknown { get; } = outcomeUnknown;

    /// <summary>What the client is told: the truth about whether its message may have been stored.</summary>
    public string ClientMessage => OutcomeUnknown ? UnknownOutcomeError : ClientError;
}
