using System.Collections.Concurrent;
using ChatServer.Tests.Auth;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ChatServer.Tests.Browser;

/// <summary>
/// The page in headless Chromium against two instances with authentication on, the tokens coming from the test OIDC
/// issuer through the page's token-provider hook (<c>window.chatTokenProvider</c>, wwwroot/auth.js).
/// </summary>
[NonParallelizable]
public sealed class AuthPageTests : BrowserTest
{
    private TestIssuer _issuer = null!;
    private ChatHost _hostA = null!;
    private ChatHost _hostB = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _issuer = await TestIssuer.StartAsync();
        _hostA = new ChatHost(TestRedis.ConnectionString, AuthFixture.Settings(_issuer));
        _hostB = new ChatHost(TestRedis.ConnectionString, AuthFixture.Settings(_issuer));
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_hostA is not null)
        {
            await _hostA.DisposeAsync();
        }

        if (_hostB is not null)
        {
            await _hostB.DisposeAsync();
        }

        if (_issuer is not null)
        {
            await _issuer.DisposeAsync();
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task Signing_in_with_a_token_hides_the_name_field_and_shows_and_uses_the_identitys_name(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("auth");
        await using var bob = await SignInClientAsync(_hostB, "Bob Roe", room, cancellationToken);
        var (page, reasons) = await OpenAsync(_hostA, _ => _issuer.Mint("Alice Doe"), cancellationToken);

        await Expect(page.Locator("#name")).ToBeHiddenAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await SignInAsync(page, room, cancellationToken);
        await Expect(page.Locator("#identity")).ToHaveTextAsync("Signed in as Alice Doe", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        await SendAsync(page, "hello with a token", cancellationToken);
        await ExpectSettledAsync(page, ["Alice Doe: hello with a token"], cancellationToken);
        var message = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That((message.User, message.Text), Is.EqualTo(("Alice Doe", "hello with a token")));
        Assert.That(reasons, Is.EqualTo(new[] { "signin" }));
    }

    [Test, CancelAfter(90_000)]
    public async Task The_page_refreshes_its_token_before_expiry_and_stays_connected(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("refresh");
        await using var bob = await SignInClientAsync(_hostB, "Bob Roe", room, cancellationToken);
        var lifetime = TimeSpan.FromSeconds(4);
        var (page, reasons) = await OpenAsync(_hostA, _ => _issuer.Mint("Alice Doe", lifetime), cancellationToken);
        var firstExpiry = DateTimeOffset.UtcNow + lifetime;
        await SignInAsync(page, room, cancellationToken);
        await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);

        // Wait (never a speed assertion) until the first token's exp has passed; a page that did not refresh is closed then.
        await Task.Delay(firstExpiry + TimeSpan.FromSeconds(2) - DateTimeOffset.UtcNow, cancellationToken);
        Assert.That(reasons, Does.Contain("refresh"));

        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await SendAsync(page, "still here", cancellationToken);
        var next = await bob.ExpectAsync(f => f.Type != "typing", cancellationToken);   // typing the message told the room
        Assert.That((next.Type, next.User, next.Text), Is.EqualTo(("message", "Alice Doe", "still here")), "no leave before it: never closed");
        Assert.That(reasons, Does.Not.Contain("expired"));
    }

    [Test, CancelAfter(90_000)]
    public async Task After_a_4001_close_the_page_gets_a_new_token_and_resumes_with_what_it_missed(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("expired");
        await using var bob = await SignInClientAsync(_hostB, "Bob Roe", room, cancellationToken);
        var (page, reasons) = await OpenAsync(_hostA, reason => reason switch
        {
            "signin" => _issuer.Mint("Alice Doe", TimeSpan.FromSeconds(3)),
            "expired" => _issuer.Mint("Alice Doe", TimeSpan.FromMinutes(10)),
            _ => null,   // the provider declines to refresh: the token runs out
        }, cancellationToken);
        await SignInAsync(page, room, cancellationToken);
        await bob.ExpectAsync(f => f.Type == "notification" && f.Description!.Contains("entered"), cancellationToken);

        var left = await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);
        Assert.That(left.Description, Is.EqualTo("Alice Doe just left the room"), "closed with 4001: it left the room");
        Assert.That((await bob.RequestAsync(new { type = "sendMessage", text = "while you were away" }, cancellationToken)).Ok, Is.True);

        await ExpectItemsAsync(page, ["Bob Roe: while you were away"], cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await SendAsync(page, "back again", cancellationToken);
        await ExpectSettledAsync(page, ["Bob Roe: while you were away", "Alice Doe: back again"], cancellationToken);
        var back = await bob.ExpectAsync(f => f.Type is "message" or "notification" && f.User == "Alice Doe", cancellationToken);
        Assert.That((back.Type, back.Text), Is.EqualTo(("message", "back again")), "resumed with updateSocketId: no join announced");
        Assert.That(reasons, Does.Contain("expired"));
    }

    private async Task<(IPage Page, ConcurrentQueue<string> Reasons)> OpenAsync(ChatHost host, Func<string, string?> tokens,
        CancellationToken cancellationToken)
    {
        var reasons = new ConcurrentQueue<string>();
        var page = await NewPageAsync(null, cancellationToken, async context =>
        {
            await context.ExposeFunctionAsync<string, string?>("chatTestToken", reason =>
            {
                reasons.Enqueue(reason);
                return tokens(reason);
            });
            // The operator's hook, as a deployment would set it in a script of its own before app.js.
            await context.AddInitScriptAsync("window.chatTokenProvider = ({ reason }) => window.chatTestToken(reason);");
        });
        await page.GotoAsync(host.BaseUri.ToString()).WaitAsync(cancellationToken);
        return (page, reasons);
    }

    private static async Task SignInAsync(IPage page, string room, CancellationToken cancellationToken)
    {
        await page.Locator("#room").FillAsync(room).WaitAsync(cancellationToken);
        await page.Locator("#signin .signin").ClickAsync().WaitAsync(cancellationToken);
        await Expect(page.Locator("#chatroom h1")).ToHaveTextAsync(room, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    private async Task<ChatClient> SignInClientAsync(ChatHost host, string name, string room, CancellationToken cancellationToken)
    {
        var client = await ChatClient.ConnectAsync(host.WebSocketUri, cancellationToken);
        Assert.That((await client.RequestAsync(new { type = "auth", token = _issuer.Mint(name) }, cancellationToken)).Ok, Is.True);
        Assert.That((await client.RequestAsync(new { type = "signin", room }, cancellationToken)).Ok, Is.True);
        return client;
    }
}
