namespace ChatServer.Protocol;

/// <summary>The wire names of every frame type (PROTOCOL.md); nothing else spells them.</summary>
internal static class FrameTypes
{
    public const string SignIn = "signin";
    public const string SendMessage = "sendMessage";
    public const string UpdateSocketId = "updateSocketId";
    public const string Members = "members";
    public const string History = "history";
    public const string Auth = "auth";   // protocol 1.1, optional authentication
    public const string Typing = "typing";   // protocol 1.2, both ways
    public const string Search = "search";   // protocol 1.2
    public const string DeleteMessage = "deleteMessage";   // protocol 1.2
    public const string Deleted = "deleted";   // protocol 1.2, server to client

    public const string Ack = "ack";
    public const string Message = "message";
    public const string Notification = "notification";
    public const string Gap = "gap";
    public const string Presence = "presence";
}
