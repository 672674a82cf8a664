using System.Net;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ChatServer.Tests.Browser;

/// <summary>
/// The page in wwwroot, driven in real headless Chromium against two real instances sharing the test Redis, the way a
/// person uses it: type, click, read the list.
/// </summary>
[NonParallelizable]
public sealed partial class PageTests : BrowserTest
{
    private ChatHost _hostA = null!;
    private ChatHost _hostB = null!;

    [OneTimeSetUp]
    public void StartHosts()
    {
        _hostA = new ChatHost(TestRedis.ConnectionString);
        _hostB = new ChatHost(TestRedis.ConnectionString);
    }

    [OneTimeTearDown]
    public async Task StopHostsAsync()
    {
        if (_hostA is not null)
        {
            await _hostA.DisposeAsync();
        }

        if (_hostB is not null)
        {
            await _hostB.DisposeAsync();
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task Googles_sample_scenario_Sundar_says_Welcome_in_room_Google(CancellationToken cancellationToken)
    {
        // The sample's exact names; a key prefix of its own keeps room "Google" empty even on a long-lived test Redis.
        await using var host = new ChatHost(TestRedis.ConnectionString,
            new Dictionary<string, string?> { ["Redis:KeyPrefix"] = $"chat-{Guid.NewGuid():N}:" });
        var page = await SignInAsync(host, "Sundar", "Google", cancellationToken);

        await page.Locator("#msg").FillAsync("Welcome!").WaitAsync(cancellationToken);
        await page.Locator("#chat .send").ClickAsync().WaitAsync(cancellationToken);

        await Expect(page.Locator("#messages li").First).ToHaveTextAsync("Sundar: Welcome!", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#chatroom h1")).ToHaveTextAsync("Google", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#msg")).ToHaveValueAsync("", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        // Usable at phone width: nothing scrolls sideways and the send button stays on screen.
        await page.SetViewportSizeAsync(360, 740).WaitAsync(cancellationToken);
        var sideways = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth").WaitAsync(cancellationToken);
        var send = await page.Locator("#chat .send").BoundingBoxAsync().WaitAsync(cancellationToken);
        Assert.That(sideways, Is.LessThanOrEqualTo(0));
        Assert.That(send!.X + send.Width, Is.LessThanOrEqualTo(360));
        await AttachScreenshotAsync(page, "phone-width.png", cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task Pages_on_two_instances_see_each_others_messages_and_join_and_leave_notifications(CancellationToken cancellationToken)
    {
        // A key prefix of their own lets the two instances use a plain room name (this test's screenshot is the README's).
        var isolated = new Dictionary<string, string?> { ["Redis:KeyPrefix"] = $"chat-{Guid.NewGuid():N}:" };
        await using var hostA = new ChatHost(TestRedis.ConnectionString, isolated);
        await using var hostB = new ChatHost(TestRedis.ConnectionString, isolated);
        const string room = "Lobby";
        var alice = await SignInAsync(hostA, "alice", room, cancellationToken);
        var bob = await SignInAsync(hostB, "bob", room, cancellationToken);

        await ExpectItemsAsync(alice, ["bob just entered the room"], cancellationToken);
        await Expect(alice.Locator("#messages li.notification")).ToHaveCountAsync(1, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        await SendAsync(bob, "Hi Alice, I'm on the other instance.", cancellationToken);
        await ExpectItemsAsync(alice, ["bob just entered the room", "bob: Hi Alice, I'm on the other instance."], cancellationToken);
        await SendAsync(alice, "Hello Bob! Same room, different server.", cancellationToken);
        string[] conversation = ["bob: Hi Alice, I'm on the other instance.", "alice: Hello Bob! Same room, different server."];
        await ExpectSettledAsync(bob, conversation, cancellationToken);
        await ExpectSettledAsync(alice, ["bob just entered the room", .. conversation], cancellationToken);

        await AttachScreenshotAsync(alice, "chat-view.png", cancellationToken);

        await bob.Locator("#leave").ClickAsync().WaitAsync(cancellationToken);
        await ExpectItemsAsync(alice, ["bob just entered the room", .. conversation, "bob just left the room"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task Signing_in_shows_the_rooms_history_oldest_first(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("history");
        await using (var carol = await ChatClient.SignInAsync(_hostB.WebSocketUri, "carol", room, cancellationToken))
        {
            foreach (var text in new[] { "first", "second", "third" })
            {
                Assert.That((await carol.RequestAsync(new { type = "sendMessage", text }, cancellationToken)).Ok, Is.True);
            }
        }

        var page = await SignInAsync(_hostA, "dave", room, cancellationToken);

        await ExpectItemsAsync(page, ["carol: first", "carol: second", "carol: third"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task The_member_list_shows_who_is_in_the_room_across_instances_and_stays_live(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("members");
        var erin = await SignInAsync(_hostA, "erin", room, cancellationToken);
        await Expect(erin.Locator("#member-list .member")).ToHaveTextAsync(["erin"], new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        var frank = await SignInAsync(_hostB, "frank", room, cancellationToken);
        await Expect(frank.Locator("#member-list .member")).ToHaveTextAsync(["erin", "frank"], new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(erin.Locator("#member-list .member")).ToHaveTextAsync(["erin", "frank"], new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        await frank.Locator("#leave").ClickAsync().WaitAsync(cancellationToken);
        await Expect(erin.Locator("#member-list .member")).ToHaveTextAsync(["erin"], new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task Scrolling_to_the_top_loads_older_messages_from_the_server(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("older");
        var settings = new Dictionary<string, string?> { ["Chat:RateLimitPerSecond"] = "1000", ["Chat:RateLimitBurst"] = "1000" };
        await using var host = new ChatHost(TestRedis.ConnectionString, settings);
        await using (var gina = await ChatClient.SignInAsync(host.WebSocketUri, "gina", room, cancellationToken))
        {
            for (var i = 1; i <= 80; i++)
            {
                Assert.That((await gina.RequestAsync(new { type = "sendMessage", text = $"m{i}" }, cancellationToken)).Ok, Is.True);
            }
        }

        var page = await SignInAsync(host, "hank", room, cancellationToken);
        var items = page.Locator("#messages li.message");
        await Expect(items).ToHaveCountAsync(50, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);   // the newest page
        await Expect(items.First).ToHaveTextAsync("gina: m31", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        await page.Locator("#messages").EvaluateAsync("list => list.scrollTop = 0").WaitAsync(cancellationToken);

        await Expect(items).ToHaveCountAsync(80, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(items.First).ToHaveTextAsync("gina: m1", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(items.Nth(30)).ToHaveTextAsync("gina: m31", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task Markup_in_names_and_messages_shows_as_text_and_never_runs(CancellationToken cancellationToken)
    {
        const string payload = "<img src=x onerror=alert(1)>";
        const string name = "<img src=y onerror=alert(2)>";
        var room = TestNames.Room("xss");
        var page = await SignInAsync(_hostA, "alice", room, cancellationToken);
        var dialogs = new List<string>();
        page.Dialog += (_, dialog) =>
        {
            dialogs.Add(dialog.Message);
            _ = dialog.DismissAsync();
        };
        await using var mallory = await ChatClient.SignInAsync(_hostB.WebSocketUri, name, room, cancellationToken);

        await SendAsync(page, payload, cancellationToken);
        Assert.That((await mallory.RequestAsync(new { type = "sendMessage", text = payload }, cancellationToken)).Ok, Is.True);
        await SendAsync(page, "sentinel", cancellationToken);   // everything before it has been drawn when it shows

        await ExpectSettledAsync(page, [$"{name} just entered the room", $"alice: {payload}", $"{name}: {payload}", "alice: sentinel"], cancellationToken);
        Assert.That(await page.Locator("#messages img").CountAsync().WaitAsync(cancellationToken), Is.Zero);
        Assert.That(await page.Locator("img").CountAsync().WaitAsync(cancellationToken), Is.Zero);
        Assert.That(dialogs, Is.Empty);
    }

    [Test, CancelAfter(60_000)]
    public async Task Content_security_policy_allows_the_pages_own_socket_only_and_no_inline_script(CancellationToken cancellationToken)
    {
        using var http = _hostA.CreateHttpClient();
        foreach (var path in new[] { "/", "/app.js", "/chat-client.js", "/app.css" })
        {
            using var response = await http.GetAsync(path, cancellationToken);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), path);
            var policy = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
            Assert.That(policy, Does.Contain("default-src 'none'").And.Contain("script-src 'self'").And.Contain("connect-src 'self'"), path);
        }

        // The page's own WebSocket works under the policy (it signs in) ...
        var page = await SignInAsync(_hostA, "erin", TestNames.Room("csp"), cancellationToken);

        // ... a socket to any other host is blocked by the browser, and injected inline script does not run.
        var blocked = await page.EvaluateAsync<string>("""
            () => new Promise(resolve => {
              document.addEventListener('securitypolicyviolation', e => resolve(e.effectiveDirective), { once: true });
              try { new WebSocket('ws://127.0.0.2:9/ws'); } catch (e) { resolve('threw ' + e.name); }
            })
            """).WaitAsync(cancellationToken);
        var inlineRan = await page.EvaluateAsync<bool>("""
            () => {
              const script = document.createElement('script');
              script.textContent = 'window.inlineRan = true';
              document.head.append(script);
              return window.inlineRan === true;
            }
            """).WaitAsync(cancellationToken);

        Assert.That(blocked, Is.EqualTo("connect-src").Or.EqualTo("threw SecurityError"));
        Assert.That(inlineRan, Is.False);
    }

    [Test, CancelAfter(90_000)]
    public async Task A_page_whose_server_restarts_reconnects_and_shows_what_it_missed_exactly_once(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("restart");
        var (host, port) = StartOnFreePort();
        try
        {
            await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
            var page = await SignInAsync(host, "alice", room, cancellationToken);
            Assert.That((await bob.RequestAsync(new { type = "sendMessage", text = "before" }, cancellationToken)).Ok, Is.True);
            await ExpectItemsAsync(page, ["bob: before"], cancellationToken);

            await host.DisposeAsync();   // the instance goes away (closing its sockets with 1012, as on SIGTERM)
            await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "reconnecting", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

            // Sending now is kept, said so, and sent once the page is back.
            await page.Locator("#msg").FillAsync("typed while away").WaitAsync(cancellationToken);
            await page.Locator("#chat .send").ClickAsync().WaitAsync(cancellationToken);
            await Expect(page.Locator("#chat-feedback")).ToContainTextAsync("1 message will be sent", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
            await Expect(page.Locator("#msg")).ToHaveValueAsync("", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

            foreach (var text in new[] { "while you were away 1", "while you were away 2" })
            {
                Assert.That((await bob.RequestAsync(new { type = "sendMessage", text }, cancellationToken)).Ok, Is.True);
            }

            host = new ChatHost(TestRedis.ConnectionString, port: port);   // the instance comes back on the same address
            await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

            // What it missed first, then the kept message, right after the resume ack, exactly once.
            await ExpectSettledAsync(page, ["bob: before", "bob: while you were away 1", "bob: while you were away 2", "alice: typed while away"], cancellationToken);
            var alicesMessage = await bob.ExpectAsync(f => f.Type == "message" && f.User == "alice", cancellationToken);
            Assert.That(alicesMessage.Text, Is.EqualTo("typed while away"));
            Assert.That((await bob.SendSentinelAndReadNextAsync(cancellationToken)).Text, Is.EqualTo("sentinel"), "sent once");
            await Expect(page.Locator("#chat-feedback")).ToHaveTextAsync("", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    [Test, CancelAfter(90_000)]
    public async Task A_page_that_missed_more_than_history_keeps_is_told_so(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("trimmed");
        var shortHistory = new Dictionary<string, string?> { ["Chat:HistoryLength"] = "2" };
        await using var sender = new ChatHost(TestRedis.ConnectionString, shortHistory);
        var (host, port) = StartOnFreePort();
        try
        {
            await using var bob = await ChatClient.SignInAsync(sender.WebSocketUri, "bob", room, cancellationToken);
            var page = await SignInAsync(host, "alice", room, cancellationToken);
            Assert.That((await bob.RequestAsync(new { type = "sendMessage", text = "m1" }, cancellationToken)).Ok, Is.True);
            await ExpectItemsAsync(page, ["bob: m1"], cancellationToken);

            await host.DisposeAsync();
            await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "reconnecting", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
            foreach (var text in new[] { "m2", "m3", "m4" })   // history keeps 2: m2 is gone when the page comes back
            {
                Assert.That((await bob.RequestAsync(new { type = "sendMessage", text }, cancellationToken)).Ok, Is.True);
            }

            host = new ChatHost(TestRedis.ConnectionString, shortHistory, port);
            await ExpectItemsAsync(page, ["bob: m1", "Some messages could not be recovered: the room's history no longer holds them.", "bob: m3", "bob: m4"],
                cancellationToken);
            await Expect(page.Locator("#messages li.warning")).ToHaveCountAsync(1, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    private static (ChatHost Host, int Port) StartOnFreePort()
    {
        var host = new ChatHost(TestRedis.ConnectionString);
        return (host, host.BaseUri.Port);
    }

    private async Task<IPage> SignInAsync(ChatHost host, string user, string room, CancellationToken cancellationToken)
    {
        var page = await NewPageAsync(null, cancellationToken);
        await page.GotoAsync(host.BaseUri.ToString()).WaitAsync(cancellationToken);
        await page.Locator("#name").FillAsync(user).WaitAsync(cancellationToken);
        await page.Locator("#room").FillAsync(room).WaitAsync(cancellationToken);
        await page.Locator("#signin .signin").ClickAsync().WaitAsync(cancellationToken);
        await Expect(page.Locator("#chatroom h1")).ToHaveTextAsync(room, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        return page;
    }

    private static async Task AttachScreenshotAsync(IPage page, string name, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots");
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        await page.ScreenshotAsync(new() { Path = path }).WaitAsync(cancellationToken);
        TestContext.AddTestAttachment(path, "the chat view in headless Chromium");
    }
}
