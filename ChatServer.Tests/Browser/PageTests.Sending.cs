using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ChatServer.Tests.Browser;

/// <summary>
/// What the page does with what people send when the connection is not there yet, or the server says no, or says
/// nothing; and how it draws times and the member list when frames cross. Where the order of frames matters, the
/// test stands between the page and the server (Playwright's WebSocket routing) and holds a frame back.
/// </summary>
public sealed partial class PageTests
{
    [Test, CancelAfter(90_000)]
    public async Task Googles_sample_scenario_on_a_cold_server_process_keeps_the_message_sent_before_the_sign_in_was_acknowledged(
        CancellationToken cancellationToken)
    {
        // A fresh process against Redis, as Cloud Run starts an instance from zero; a key prefix of its own keeps room
        // "Google" empty.
        using var server = ChatProcess.Start(TestRedis.ConnectionString, new Dictionary<string, string>
        {
            ["Redis__KeyPrefix"] = $"chat-{Guid.NewGuid():N}:",
        });
        await server.WaitUntilReadyAsync(cancellationToken);
        var page = await OpenAsync(server.BaseUri, cancellationToken);

        // The sample's test, step for step: values set and buttons clicked by script, 100 ms apart, waiting for nothing.
        await page.EvaluateAsync("""
            () => {
              document.querySelector('#name').value = 'Sundar';
              document.querySelector('#room').value = 'Google';
              document.querySelector('.signin').click();
            }
            """).WaitAsync(cancellationToken);
        await Task.Delay(100, cancellationToken);
        await page.EvaluateAsync("""
            () => {
              document.querySelector('#msg').value = 'Welcome!';
              document.querySelector('.send').click();
            }
            """).WaitAsync(cancellationToken);

        await Expect(page.Locator("#messages li").First).ToHaveTextAsync("Sundar: Welcome!", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await ExpectSettledAsync(page, ["Sundar: Welcome!"], cancellationToken);   // in the room, not just sending
        await using var observer = await ChatClient.SignInAsync(server.WebSocketUri, "observer", "Google", cancellationToken);
        var history = (await observer.RequestAsync(new { type = "history" }, cancellationToken)).Messages;
        Assert.That(history.Select(m => $"{m.User}: {m.Text}"), Is.EqualTo(new[] { "Sundar: Welcome!" }), "stored once");
        await ExpectItemsAsync(page, ["Sundar: Welcome!", "observer just entered the room"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task Messages_sent_before_the_sign_in_ack_go_out_once_in_order_right_after_it(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("early");
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        relay.Hold(f => f.Type == "ack" && f.HasMessages);   // the sign-in ack (it carries the history)

        await page.EvaluateAsync($$"""
            () => {
              document.querySelector('#name').value = 'alice';
              document.querySelector('#room').value = {{JsonSerializer.Serialize(room)}};
              document.querySelector('.signin').click();
              for (const text of ['one', 'two', 'three']) {
                document.querySelector('#msg').value = text;
                document.querySelector('.send').click();
              }
            }
            """).WaitAsync(cancellationToken);
        await relay.HeldAsync(cancellationToken);
        Assert.That(relay.FromPage.Where(f => f.Type == "sendMessage"), Is.Empty, "nothing is sent before the sign-in is acknowledged");
        await Expect(page.Locator("#chat-feedback")).ToContainTextAsync("3 messages will be sent", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        relay.Release();

        await ExpectSettledAsync(page, ["alice: one", "alice: two", "alice: three"], cancellationToken);
        foreach (var text in new[] { "one", "two", "three" })
        {
            Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo(text));
        }

        var after = await bob.SendSentinelAndReadNextAsync(cancellationToken);
        Assert.That(after.Text, Is.EqualTo("sentinel"), $"nothing sent twice: {after.Raw}");
        Assert.That(relay.FromPage.Count(f => f.Type == "sendMessage"), Is.EqualTo(3));
        await Expect(page.Locator("#chat-feedback")).ToHaveTextAsync("", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_message_refused_by_the_rate_limit_shows_as_failed_and_Retry_sends_it_once(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("limited");
        // One frame a second: the relay's 60 frames spend the burst of 40 however slowly Playwright sends them on a
        // loaded machine (at the default 20 a second, 17 ms per relayed frame refilled the bucket in time: seen once).
        await using var host = new ChatHost(TestRedis.ConnectionString, new Dictionary<string, string?> { ["Chat:RateLimitPerSecond"] = "1" });
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken, host);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);

        // Before the page's message reaches the server, spend the connection's whole burst; those acks stay here.
        relay.BeforeForwarding(f => f.Type == "sendMessage", f =>
        {
            for (var i = 0; i < 60; i++)
            {
                relay.SendToServer("""{"type":"dance"}""");
            }
        }, once: true);
        relay.Drop(f => f.Type == "ack" && f.IdJson == "null");
        await page.Locator("#msg").FillAsync("too fast").WaitAsync(cancellationToken);
        await page.Locator("#chat .send").ClickAsync().WaitAsync(cancellationToken);

        var failed = page.Locator("#messages li[data-send=failed]");
        await Expect(failed).ToContainTextAsync("alice: too fastNot sent: Rate limit exceeded", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        await Task.Delay(1_500, cancellationToken);   // the bucket refills at 1 frame a second
        await failed.Locator("button.retry").ClickAsync().WaitAsync(cancellationToken);
        await ExpectSettledAsync(page, ["alice: too fast"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_send_the_server_never_answers_fails_after_10_s_and_Retry_with_its_key_stores_it_once(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("silent");
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);
        // Stored, but the page hears nothing of it: neither its ack nor its message frame.
        relay.Drop(f => (f.Type == "ack" && relay.FromPage.Any(p => p.Type == "sendMessage" && p.IdJson == f.IdJson))
            || (f.Type == "message" && f.Text == "into the void"));

        await SendAsync(page, "into the void", cancellationToken);

        var failed = page.Locator("#messages li[data-send=failed]");
        await Expect(failed).ToContainTextAsync("did not answer within 10 s", new() { Timeout = 30_000 }).WaitAsync(cancellationToken);
        relay.Drop(_ => false);
        await failed.Locator("button.retry").ClickAsync().WaitAsync(cancellationToken);
        var retried = relay.FromPage.Last(f => f.Type == "sendMessage");
        var ack = await relay.ForwardedAsync(f => f.Type == "ack" && f.IdJson == retried.IdJson, cancellationToken);
        Assert.That(ack.Raw, Does.Contain("\"duplicate\":true"), "the retry carried the first try's key");

        await SendAsync(page, "still here", cancellationToken);
        await ExpectSettledAsync(page, ["alice: into the void", "alice: still here"], cancellationToken);
        var history = await bob.RequestAsync(new { type = "history" }, cancellationToken);
        Assert.That(history.Messages.Select(m => m.Text), Is.EqualTo(new[] { "into the void", "still here" }), "stored once");
    }

    [Test, CancelAfter(60_000)]
    public async Task Presence_that_arrives_while_the_member_list_is_being_fetched_is_applied_after_it(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("crossing");
        var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        try
        {
            var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
            relay.Hold(f => f.Type == "ack" && f.Root.TryGetProperty("members", out _));   // computed with bob still in
            await SignInOnPageAsync(page, "alice", room, cancellationToken);
            var held = await relay.HeldAsync(cancellationToken);
            Assert.That(held.Raw, Does.Contain("\"bob\""));

            await bob.DisposeAsync();   // bob's last connection: presence {bob, present:false} reaches the page first
            await relay.ForwardedAsync(f => f.Type == "presence" && f.User == "bob", cancellationToken);
            relay.Release();

            await Expect(page.Locator("#member-list .member")).ToHaveTextAsync(["alice"], new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
            // The page's own message coming back means it has handled everything sent before it: no late flicker left.
            await SendAsync(page, "sentinel", cancellationToken);
            await Expect(page.Locator("#messages li.message:not([data-send])").Last).ToHaveTextAsync("alice: sentinel", new() { Timeout = WaitMs })
                .WaitAsync(cancellationToken);
            await Expect(page.Locator("#member-list .member")).ToHaveTextAsync(["alice"], new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        }
        finally
        {
            await bob.DisposeAsync();
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task Each_message_shows_its_local_time_of_day_and_the_full_date_and_time_on_hover(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("times");
        var page = await NewPageAsync(new() { Locale = "en-GB", TimezoneId = "Asia/Kolkata" }, cancellationToken);
        await page.GotoAsync(_hostA.BaseUri.ToString()).WaitAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);

        var sent = await bob.RequestAsync(new { type = "sendMessage", text = "what time is it?" }, cancellationToken);
        Assert.That(sent.Ok, Is.True, sent.Raw);
        var message = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        var ts = DateTimeOffset.Parse(message.Ts!, CultureInfo.InvariantCulture);
        var local = ts.ToOffset(TimeSpan.FromHours(5.5));   // Kolkata: +05:30 all year

        var item = page.Locator("#messages li.message").Last;
        await Expect(item).ToHaveTextAsync("bob: what time is it?", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        var shown = await item.EvaluateAsync<string>("li => getComputedStyle(li, '::before').content").WaitAsync(cancellationToken);
        Assert.That(shown, Is.EqualTo($"\"{local:HH:mm}\""), "the time of day, in the page's time zone");
        var title = await item.GetAttributeAsync("title").WaitAsync(cancellationToken);
        Assert.That(title, Does.Contain(local.ToString("dddd", CultureInfo.InvariantCulture))
            .And.Contain(local.ToString("MMMM", CultureInfo.InvariantCulture))
            .And.Contain(local.Year.ToString(CultureInfo.InvariantCulture))
            .And.Contain(local.ToString("HH:mm:ss", CultureInfo.InvariantCulture)));
    }

    private async Task<IPage> OpenAsync(Uri baseUri, CancellationToken cancellationToken)
    {
        var page = await NewPageAsync(null, cancellationToken);
        await page.GotoAsync(baseUri.ToString()).WaitAsync(cancellationToken);
        return page;
    }

    private static async Task SignInOnPageAsync(IPage page, string user, string room, CancellationToken cancellationToken)
    {
        await page.Locator("#name").FillAsync(user).WaitAsync(cancellationToken);
        await page.Locator("#room").FillAsync(room).WaitAsync(cancellationToken);
        await page.Locator("#signin .signin").ClickAsync().WaitAsync(cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "connected", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    /// <summary>A page on instance A (or <c>host</c>) whose socket goes through a <see cref="SocketRelay"/> the test controls.</summary>
    private async Task<(IPage Page, SocketRelay Relay)> OpenBehindRelayAsync(CancellationToken cancellationToken, ChatHost? host = null)
    {
        var page = await OpenAsync((host ?? _hostA).BaseUri, cancellationToken);
        var relay = new SocketRelay();
        await page.RouteWebSocketAsync("**/ws", relay.Attach).WaitAsync(cancellationToken);
        return (page, relay);
    }
}
