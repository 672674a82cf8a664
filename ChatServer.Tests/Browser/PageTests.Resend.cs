using System.Diagnostics;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ChatServer.Tests.Browser;

/// <summary>
/// Protocol 1.2 on the page: every message carries a key from the moment it is typed, so one whose fate the page cannot
/// know (the connection went before the answer) is sent again after the reconnect and the room still sees it once; one
/// the server refused stays in the list, failed, with Retry; and "alice is typing…" for the others.
/// </summary>
public sealed partial class PageTests
{
    private const string NothingStored = "The message store is unavailable; nothing was stored. Try again shortly.";

    [Test, CancelAfter(60_000)]
    public async Task A_message_lost_with_the_connection_is_sent_again_after_the_reconnect_with_its_key_before_what_was_typed_later(
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("resend");
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);

        // The frame never reaches the server, the connection goes with it, and the server stays out of reach a while.
        relay.Intercept(f => f.Type == "sendMessage", _ =>
        {
            relay.Refuse(true);
            relay.Cut();
            return null;
        }, once: true);
        await SendAsync(page, "lost on the way", cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "reconnecting", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await SendAsync(page, "typed later", cancellationToken);
        await Expect(page.Locator("#chat-feedback")).ToContainTextAsync("2 messages will be sent", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#messages li[data-send=waiting]")).ToHaveTextAsync(["alice: lost on the way", "alice: typed later"], new() { Timeout = WaitMs })
            .WaitAsync(cancellationToken);

        await ComeBackAsync(page, relay, cancellationToken);

        await ExpectSettledAsync(page, ["alice: lost on the way", "alice: typed later"], cancellationToken);
        Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("lost on the way"));
        Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("typed later"));
        Assert.That(await NextMessageAfterSentinelAsync(bob, cancellationToken), Is.EqualTo("sentinel"), "nothing twice");
        var sends = relay.FromPage.Where(f => f.Type == "sendMessage").Select(f => (f.Text, Key: Key(f))).ToList();
        Assert.That(sends.Select(s => s.Text), Is.EqualTo(new[] { "lost on the way", "lost on the way", "typed later" }), "resent first");
        Assert.That(sends[1].Key, Is.EqualTo(sends[0].Key).And.Not.Null, "resent with the key it had");
        await ExpectRoomHistoryAsync(bob, ["lost on the way", "typed later", "sentinel"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_message_stored_just_before_the_connection_dropped_is_recovered_on_reconnect_and_not_sent_again(
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("stored");
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);

        // The frame reaches the server; the connection drops before anything comes back (its ack, its message).
        relay.AfterForwarding(f => f.Type == "sendMessage", _ =>
        {
            relay.Refuse(true);
            relay.Cut();
        }, once: true);
        await SendAsync(page, "made it", cancellationToken);
        Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("made it"));
        await Expect(page.Locator("#messages li[data-send=waiting]")).ToHaveTextAsync("alice: made it", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        await ComeBackAsync(page, relay, cancellationToken);

        // updateSocketId brings it back with its key: the page knows it was stored and sends nothing again.
        await ExpectSettledAsync(page, ["alice: made it"], cancellationToken);
        Assert.That(await NextMessageAfterSentinelAsync(bob, cancellationToken), Is.EqualTo("sentinel"), "nothing twice");
        Assert.That(relay.FromPage.Count(f => f.Type == "sendMessage"), Is.EqualTo(1));
        await ExpectRoomHistoryAsync(bob, ["made it", "sentinel"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_resend_of_a_message_the_server_stored_late_is_acknowledged_as_a_duplicate_and_the_room_sees_it_once(
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("late");
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);

        // The page's socket drops while its frame is still on the way on the old connection, which the server keeps.
        relay.HoldFromPage(f => f.Type == "sendMessage");
        await SendAsync(page, "late", cancellationToken);
        await relay.FromPageAsync(f => f.Type == "sendMessage", 1, cancellationToken);
        relay.Cut(serverSideToo: false);
        await relay.FromPageAsync(f => f.Type == "sendMessage", 2, cancellationToken);   // resent after the reconnect: held too
        relay.HoldFromPage(null);

        relay.ReleaseFromPage(1);   // the old frame arrives and is stored ...
        Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("late"));
        relay.ReleaseFromPage(1);   // ... and then the resend
        var sends = relay.FromPage.Where(f => f.Type == "sendMessage").ToList();
        var ack = await relay.ForwardedAsync(f => f.Type == "ack" && f.IdJson == sends[1].IdJson, cancellationToken);

        Assert.That(ack.Raw, Does.Contain("\"duplicate\":true"), "the server stored it once");
        Assert.That(Key(sends[1]), Is.EqualTo(Key(sends[0])).And.Not.Null);
        await ExpectSettledAsync(page, ["alice: late"], cancellationToken);
        Assert.That(await NextMessageAfterSentinelAsync(bob, cancellationToken), Is.EqualTo("sentinel"), "nothing twice");
        await ExpectRoomHistoryAsync(bob, ["late", "sentinel"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task Three_messages_typed_while_offline_arrive_once_each_in_order_when_the_connection_is_back(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("offline");
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);

        relay.Refuse(true);
        relay.Cut();
        await page.Context.SetOfflineAsync(true).WaitAsync(cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "offline", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        foreach (var text in new[] { "one", "two", "three" })
        {
            await SendAsync(page, text, cancellationToken);
        }

        await Expect(page.Locator("#chat-feedback")).ToContainTextAsync("3 messages will be sent", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#messages li[data-send=waiting]")).ToHaveTextAsync(["alice: one", "alice: two", "alice: three"], new() { Timeout = WaitMs })
            .WaitAsync(cancellationToken);
        await AttachScreenshotAsync(page, "offline-sending.png", cancellationToken);

        relay.Refuse(false);
        await page.Context.SetOfflineAsync(false).WaitAsync(cancellationToken);   // the browser's `online` event: retry now

        await ExpectSettledAsync(page, ["alice: one", "alice: two", "alice: three"], cancellationToken);
        foreach (var text in new[] { "one", "two", "three" })
        {
            Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo(text));
        }

        Assert.That(await NextMessageAfterSentinelAsync(bob, cancellationToken), Is.EqualTo("sentinel"), "nothing twice");
        var keys = relay.FromPage.Where(f => f.Type == "sendMessage").Select(Key).ToList();
        Assert.That(keys, Has.Count.EqualTo(3).And.Unique.And.No.Null);
        await Expect(page.Locator("#chat-feedback")).ToHaveTextAsync("", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await ExpectRoomHistoryAsync(bob, ["one", "two", "three", "sentinel"], cancellationToken);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_message_the_server_refuses_shows_as_failed_and_Retry_sends_it_with_the_same_key_and_Discard_drops_it(
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("refused");
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "alice", room, cancellationToken);
        var failed = page.Locator("#messages li[data-send=failed]");

        // The server's answer when Redis cannot be reached: nothing stored.
        relay.Intercept(f => f.Type == "sendMessage", RefusedAck, once: true);
        await SendAsync(page, "second chance", cancellationToken);
        await Expect(failed).ToContainTextAsync($"alice: second chanceNot sent: {NothingStored}", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await AttachScreenshotAsync(page, "failed-message.png", cancellationToken);

        await failed.Locator("button.retry").ClickAsync().WaitAsync(cancellationToken);

        await ExpectSettledAsync(page, ["alice: second chance"], cancellationToken);
        Assert.That((await bob.ExpectAsync(f => f.Type == "message", cancellationToken)).Text, Is.EqualTo("second chance"));
        var sends = relay.FromPage.Where(f => f.Type == "sendMessage").ToList();
        Assert.That(sends.Select(Key).Distinct().ToList(), Has.Count.EqualTo(1).And.No.Null, "the retry carried the same key");
        Assert.That(sends, Has.Count.EqualTo(2));

        relay.Intercept(f => f.Type == "sendMessage", RefusedAck, once: true);
        await SendAsync(page, "never mind", cancellationToken);
        await Expect(failed).ToContainTextAsync("alice: never mind", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await failed.Locator("button.discard").ClickAsync().WaitAsync(cancellationToken);

        await ExpectSettledAsync(page, ["alice: second chance"], cancellationToken);
        Assert.That(await NextMessageAfterSentinelAsync(bob, cancellationToken), Is.EqualTo("sentinel"), "the discarded one was not sent");
        Assert.That(relay.FromPage.Count(f => f.Type == "sendMessage"), Is.EqualTo(3));
        await ExpectRoomHistoryAsync(bob, ["second chance", "sentinel"], cancellationToken);

        static string RefusedAck(Frame f) =>
            $$"""{"type":"ack","id":{{f.IdJson}},"ok":false,"error":{{JsonSerializer.Serialize(NothingStored)}}}""";
    }

    [Test, CancelAfter(60_000)]
    public async Task Others_see_alice_is_typing_for_3_s_after_her_last_keystroke_and_her_own_tabs_never_do(CancellationToken cancellationToken)
    {
        var room = TestNames.Room("typing");
        var alice = await SignInAsync(_hostA, "alice", room, cancellationToken);
        var aliceElsewhere = await SignInAsync(_hostB, "alice", room, cancellationToken);   // her other tab, another instance
        var bob = await SignInAsync(_hostB, "bob", room, cancellationToken);
        await using var carol = await ChatClient.SignInAsync(_hostA.WebSocketUri, "carol", room, cancellationToken);
        foreach (var page in new[] { alice, aliceElsewhere })
        {
            // Every text the line ever shows, so "never" can be checked afterwards.
            await page.EvaluateAsync("""
                () => {
                  window.typingShown = [];
                  const line = document.querySelector('#typing');
                  new MutationObserver(() => window.typingShown.push(line.textContent)).observe(line, { childList: true, characterData: true, subtree: true });
                }
                """).WaitAsync(cancellationToken);
        }

        var bobsLine = bob.Locator("#typing");
        var clock = Stopwatch.StartNew();
        await alice.Locator("#msg").PressSequentiallyAsync("hel").WaitAsync(cancellationToken);
        await Expect(bobsLine).ToHaveTextAsync("alice is typing…", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(bobsLine).ToHaveTextAsync("", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        var shownFor = clock.Elapsed;
        Assert.That(shownFor, Is.GreaterThan(TimeSpan.FromSeconds(2.5)), "shown for 3 s after the keystroke");

        // Two at once, in the order they started. Carol's message ends her typing at once and leaves alice alone on the
        // line, which expiry could not do: carol started later and would outlast her.
        await aliceElsewhere.Locator("#msg").PressSequentiallyAsync("lo").WaitAsync(cancellationToken);
        await Expect(bobsLine).ToHaveTextAsync("alice is typing…", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        Assert.That((await carol.RequestAsync(new { type = "typing" }, cancellationToken)).Ok, Is.True);
        await Expect(bobsLine).ToHaveTextAsync("alice and carol are typing…", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await AttachScreenshotAsync(bob, "typing.png", cancellationToken);
        Assert.That((await carol.RequestAsync(new { type = "sendMessage", text = "done typing" }, cancellationToken)).Ok, Is.True);
        await Expect(bobsLine).ToHaveTextAsync("alice is typing…", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        // Both of alice's tabs have had carol's message (after every `typing` of alice's) and showed carol, never alice.
        foreach (var page in new[] { alice, aliceElsewhere })
        {
            await Expect(page.Locator("#messages li.message").Last).ToHaveTextAsync("carol: done typing", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
            var shown = await page.EvaluateAsync<string[]>("() => window.typingShown").WaitAsync(cancellationToken);
            Assert.That(shown, Is.Not.Empty.And.All.Not.Contain("alice"), string.Join(" | ", shown));
        }
    }

    /// <summary>The room's stored history, as another member reads it: each text once, in order.</summary>
    private static async Task ExpectRoomHistoryAsync(ChatClient member, string[] texts, CancellationToken cancellationToken)
    {
        var history = await member.RequestAsync(new { type = "history" }, cancellationToken);
        Assert.That(history.Messages.Select(m => m.Text), Is.EqualTo(texts), history.Raw);
    }

    /// <summary>Sends <c>sentinel</c> and returns the text of the next message: "sentinel" when nothing else was stored meanwhile.</summary>
    private static async Task<string?> NextMessageAfterSentinelAsync(ChatClient member, CancellationToken cancellationToken)
    {
        await member.SendAsync(new { type = "sendMessage", text = "sentinel" }, cancellationToken);
        return (await member.ExpectAsync(f => f.Type == "message", cancellationToken)).Text;
    }

    /// <summary>Lets the page's sockets through again and has it retry at once, as the browser's `online` event does.</summary>
    private static async Task ComeBackAsync(IPage page, SocketRelay relay, CancellationToken cancellationToken)
    {
        relay.Refuse(false);
        await page.EvaluateAsync("() => dispatchEvent(new Event('online'))").WaitAsync(cancellationToken);
    }

    private static string? Key(Frame frame) =>
        frame.Root.TryGetProperty("key", out var key) && key.ValueKind == JsonValueKind.String ? key.GetString() : null;
}
