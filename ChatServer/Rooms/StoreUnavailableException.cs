namespace ChatServer.Rooms;

/// <summary>The message store could not be reached; nothing was stored or published.</summary>
internal sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner)
{
    public const string ClientError = "The message store is unavailable; nothing was stored. Try again shortly.";
}
