namespace ChatServer.Tests;

/// <summary>Fresh names per test: all tests share one Redis and must not see each other's rooms.</summary>
public static class TestNames
{
    public static string Room(string hint = "room") => $"{hint}-{Guid.NewGuid():N}";
}
