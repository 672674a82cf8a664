using ChatServer.Moderation;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace ChatServer.Tests.Browser;

/// <summary>A moderated person sees why (docs/API.md): a kick's reason from the 4003 close, a ban's sentence, and no reconnect.</summary>
public sealed partial class PageTests
{
    [Test, CancelAfter(60_000)]
    public async Task A_kicked_person_sees_the_reason_and_the_page_does_not_reconnect(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var page = await SignInAsync(_hostA, "mallory", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(_hostB.WebSocketUri, "bob", room, cancellationToken);

        Assert.That(await _hostB.Services.GetRequiredService<IModerationBus>().KickAsync(room, "mallory", "spam"), Is.EqualTo(1));

        await Expect(page.Locator("#messages li.warning").Last).ToHaveTextAsync("You were removed from the room: spam.", new() { Timeout = WaitMs })
            .WaitAsync(cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "offline", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        // The room heard mallory leave, and nobody named mallory came back (a reconnect would show up in members).
        await bob.ExpectAsync(f => f.Type == "notification" && f.Title == "Someone just left", cancellationToken);
        var members = await bob.RequestAsync(new { type = "members" }, cancellationToken);
        Assert.That(members.Root.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "bob" }));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_person_banned_while_away_sees_the_bans_sentence_instead_of_reconnecting(CancellationToken cancellationToken)
    {
        var room = TestNames.Room();
        var (page, relay) = await OpenBehindRelayAsync(cancellationToken);
        await SignInOnPageAsync(page, "mallory", room, cancellationToken);
        var until = DateTimeOffset.UtcNow.AddHours(1);
        await _hostA.Services.GetRequiredService<IBanStore>().SetAsync(room, new Ban("mallory", until, "flooding"));

        // The connection drops without a kick (as on a deploy); the page's reconnect is refused by the ban.
        relay.Cut();
        await relay.FromPageAsync(f => f.Type == "updateSocketId", 1, cancellationToken);

        var sentence = new Ban("mallory", until, "flooding").Sentence(room);
        await Expect(page.Locator("#messages li.warning").Last).ToHaveTextAsync(sentence, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#status")).ToHaveAttributeAsync("data-state", "offline", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }
}
