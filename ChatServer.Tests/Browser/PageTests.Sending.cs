using System.Collections.Concurrent;
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

        await ExpectItemsAsync(page, ["alice: one", "alice: two", "alice: three"], cancellationToken);
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
    public async Task A_message_refused_by_the_rate_limit_says_so_and_the_page_can_send_again(CancellationToken cancellationToken)
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

        await Expect(page.Locator("#chat-feedback")).ToContainTextAsync("Not sent: Rate limit exceeded", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#msg")).ToHaveValueAsync("too fast", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        await Task.Delay(1_500, cancellationToken);   // the bucket refills at 1 frame a second
        await SendAsync(page, "too fast", cancellationToken);
        await ExpectItemsAsync(page, ["alice: too fast"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_request_the_server_never_answers_fails_after_10_s_with_a_visible_error(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("silent");
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);
        relay.Drop(f => f.Type == "ack" && f.IdJson is not null && relay.FromPage.Any(p => p.Type == "sendMessage" && p.IdJson == f.IdJson), once: true);

        await page.Locator("#msg").FillAsync("into the void").WaitAsync(cancellationToken);
        await page.Locator("#chat .send").ClickAsync().WaitAsync(cancellationToken);

        await Expect(page.Locator("#chat-feedback")).ToContainTextAsync("did not answer within 10 s", new() { Timeout = 30_000 }).WaitAsync(cancellationToken);
        await page.Locator("#msg").FillAsync("still here").WaitAsync(cancellationToken);
        await SendAsync(page, "still here", cancellationToken);
        await ExpectItemsAsync(page, ["alice: into the void", "alice: still here"], cancellationToken);
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
            await Expect(page.Locator("#messages li.message").Last).ToHaveTextAsync("alice: sentinel", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
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

    /// <summary>
    /// Stands between the page's socket and the server: forwards every frame both ways, records them, and on request
    /// holds back, drops or precedes a frame. Handlers run on Playwright's dispatcher, one at a time.
    /// </summary>
    private sealed class SocketRelay
    {
        private readonly ConcurrentQueue<Frame> _fromPage = new();
        private readonly List<Frame> _forwarded = [];
        private readonly List<(Func<Frame, bool> Match, TaskCompletionSource Done)> _waiters = [];
        private readonly TaskCompletionSource<Frame> _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<Frame> _backlog = [];
        private readonly object _lock = new();
        private IWebSocketRoute? _page;
        private IWebSocketRoute? _server;
        private Func<Frame, bool>? _hold;
        private bool _holding;
        private (Func<Frame, bool> Match, bool Once)? _drop;
        private (Func<Frame, bool> Match, Action<Frame> Action, bool Once)? _before;

        public IReadOnlyList<Frame> FromPage => [.. _fromPage];

        public void Attach(IWebSocketRoute page)
        {
            _page = page;
            _server = page.ConnectToServer();
            page.OnMessage(message =>
            {
                var frame = new Frame(message.Text ?? "{}");
                _fromPage.Enqueue(frame);
                if (_before is { } before && before.Match(frame))
                {
                    _before = before.Once ? null : before;
                    before.Action(frame);
                }

                _server.Send(frame.Raw);
            });
            _server.OnMessage(message => FromServer(new Frame(message.Text ?? "{}")));
        }

        public void SendToServer(string text) => _server!.Send(text);

        /// <summary>The first frame from the server that matches, and everything after it, wait for <see cref="Release"/>.</summary>
        public void Hold(Func<Frame, bool> match) => _hold = match;

        public void Drop(Func<Frame, bool> match, bool once = false) => _drop = (match, once);

        public void BeforeForwarding(Func<Frame, bool> match, Action<Frame> action, bool once) => _before = (match, action, once);

        public Task<Frame> HeldAsync(CancellationToken cancellationToken) => _held.Task.WaitAsync(cancellationToken);

        public void Release()
        {
            lock (_lock)
            {
                _holding = false;
                foreach (var frame in _backlog)
                {
                    Forward(frame);
                }

                _backlog.Clear();
            }
        }

        /// <summary>Completes once a frame that matches has been passed to the page (or already was).</summary>
        public Task ForwardedAsync(Func<Frame, bool> match, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                if (_forwarded.Any(match))
                {
                    return Task.CompletedTask;
                }

                var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((match, waiter));
                return waiter.Task.WaitAsync(cancellationToken);
            }
        }

        private void FromServer(Frame frame)
        {
            if (_drop is { } drop && drop.Match(frame))
            {
                _drop = drop.Once ? null : drop;
                return;
            }

            lock (_lock)   // Monitor is re-entrant: Forward takes it too
            {
                if (!_holding && _hold is { } hold && hold(frame))
                {
                    _hold = null;
                    _holding = true;
                    _backlog.Add(frame);
                    _held.TrySetResult(frame);
                    return;
                }

                // While a frame is held, what comes after it waits behind it, but for presence frames: those are what
                // a test lets cross the held frame.
                if (_holding && frame.Type != "presence")
                {
                    _backlog.Add(frame);
                    return;
                }

                Forward(frame);
            }
        }

        private void Forward(Frame frame)
        {
            lock (_lock)
            {
                _forwarded.Add(frame);
                _page!.Send(frame.Raw);
                foreach (var waiter in _waiters.Where(w => w.Match(frame)).ToList())
                {
                    _waiters.Remove(waiter);
                    waiter.Done.TrySetResult();
                }
            }
        }
    }
}
