using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ChatServer.Tests.Browser;

/// <summary>
/// What every browser test class shares: one headless Chromium (Debian's, never a downloaded one) for the class, a fresh
/// context per page, closed after each test, and no uncaught error in the page's scripts allowed.
/// </summary>
public abstract class BrowserTest
{
    // Playwright's own waits poll until this deadline; each await is also bounded by the test's [CancelAfter] token.
    protected const float WaitMs = 20_000;

    private readonly List<IBrowserContext> _contexts = [];
    private readonly List<string> _pageErrors = [];
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    [OneTimeSetUp]
    public async Task LaunchBrowserAsync() => (_playwright, _browser) = await Chromium.LaunchAsync();

    [OneTimeTearDown]
    public async Task CloseBrowserAsync()
    {
        if (_browser is not null)
        {
            await _browser.CloseAsync();
        }

        _playwright?.Dispose();
    }

    [TearDown]
    public async Task ClosePagesAsync()
    {
        foreach (var context in _contexts)
        {
            await context.CloseAsync();
        }

        _contexts.Clear();
        var errors = _pageErrors.ToList();
        _pageErrors.Clear();
        Assert.That(errors, Is.Empty, "uncaught errors in the page's scripts");
    }

    /// <summary>A context of its own (closed after the test), prepared by <paramref name="prepare"/> before its page opens.</summary>
    protected async Task<IPage> NewPageAsync(BrowserNewContextOptions? options, CancellationToken cancellationToken,
        Func<IBrowserContext, Task>? prepare = null)
    {
        var context = await _browser!.NewContextAsync(options ?? new() { ViewportSize = new() { Width = 760, Height = 560 } })
            .WaitAsync(cancellationToken);
        _contexts.Add(context);
        if (prepare is not null)
        {
            await prepare(context).WaitAsync(cancellationToken);
        }

        var page = await context.NewPageAsync().WaitAsync(cancellationToken);
        page.PageError += (_, error) => _pageErrors.Add(error);
        return page;
    }

    /// <summary>Types and sends; returns once the box is empty again (cleared on the ok ack).</summary>
    protected static async Task SendAsync(IPage page, string text, CancellationToken cancellationToken)
    {
        await page.Locator("#msg").FillAsync(text).WaitAsync(cancellationToken);
        await page.Locator("#chat .send").ClickAsync().WaitAsync(cancellationToken);
        await Expect(page.Locator("#msg")).ToHaveValueAsync("", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    /// <summary>The whole list, in order: nothing missing, nothing twice.</summary>
    protected static Task ExpectItemsAsync(IPage page, string[] items, CancellationToken cancellationToken) =>
        Expect(page.Locator("#messages li")).ToHaveTextAsync(items, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

    /// <summary>
    /// None of the page's own messages still on its way or failed (<c>data-send</c>), then the whole list as in
    /// <see cref="ExpectItemsAsync"/>: in that order, since an item still sending reads the same as the message it becomes.
    /// </summary>
    protected static async Task ExpectSettledAsync(IPage page, string[] items, CancellationToken cancellationToken)
    {
        await Expect(page.Locator("#messages li[data-send]")).ToHaveCountAsync(0, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await ExpectItemsAsync(page, items, cancellationToken);
    }
}
