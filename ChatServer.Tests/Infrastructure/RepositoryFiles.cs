namespace ChatServer.Tests;

/// <summary>Paths in the repository the tests run from (found by walking up to <c>Chat.sln</c>).</summary>
public static class RepositoryFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>
    /// A dependency the test command installs (Chromium, wscat). Missing in CI is a failure; on a developer machine
    /// the test is marked inconclusive with how to install it, so the summary line shows it as skipped.
    /// </summary>
    public static void RequireTool(string? path, string what, string install)
    {
        if (path is not null && File.Exists(path))
        {
            return;
        }

        var message = $"{what} was not found; {install} (bash scripts/test.sh does this when run as root).";
        if (Environment.GetEnvironmentVariable("CI") == "true")
        {
            Assert.Fail(message);
        }

        Assert.Ignore(message);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Chat.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Chat.sln above {AppContext.BaseDirectory}.");
    }
}
