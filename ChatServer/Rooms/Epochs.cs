namespace ChatServer.Rooms;

internal static class Epochs
{
    private const string Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

    /// <summary>A fresh history generation name: 10 base-36 characters, safe in JSON, Lua and our entry header.</summary>
    public static string New() => new(Random.Shared.GetItems<char>(Alphabet, 10));
}
