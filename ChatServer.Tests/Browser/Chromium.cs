using Microsoft.Playwright;

namespace ChatServer.Tests.Browser;

/// <summary>
/// Headless Chromium from Debian's package (<c>/usr/bin/chromium</c>, or <c>CHAT_TEST_CHROMIUM</c>) driven by
/// Playwright. Playwright never downloads a browser here: the machines reach no site but the package registries.
/// </summary>
public static class Chromium
{
    public static string? ExecutablePath =>
        new[] { Environment.GetEnvironmentVariable("CHAT_TEST_CHROMIUM"), "/usr/bin/chromium" }.FirstOrDefault(File.Exists);

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        RepositoryFiles.RequireTool(ExecutablePath, "Chromium", "install it with apt-get install chromium");
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"],
        });
        return (playwright, browser);
    }
}
