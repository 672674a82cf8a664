using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Npgsql;
using StackExchange.Redis;
using static Microsoft.Playwright.Assertions;

namespace ChatServer.Tests.Browser;

/// <summary>
/// Protocol 1.2's history on the page, against instances with the history database (PostgreSQL) and a Redis that keeps
/// only the newest 5 messages of a room: scrolling up pages on past Redis and across an epoch change; a person deletes
/// their own message and every page shows "message deleted" in its place; the search box and its results panel.
/// </summary>
public sealed partial class PageTests
{
    private const string SearchNeedsDatabase = "Search needs the history database (History__ConnectionString).";

    [Test, CancelAfter(90_000)]
    public async Task Scrolling_to_the_top_pages_on_from_the_history_database_across_an_epoch_change_in_order_each_message_once(
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("archive");
        await using var history = await StartHistoryHostsAsync(1, cancellationToken);
        await using (var gina = await ChatClient.SignInAsync(history.A.WebSocketUri, "gina", room, cancellationToken))
        {
            for (var i = 1; i <= 60; i++)
            {
                Assert.That((await gina.RequestAsync(new { type = "sendMessage", text = $"first epoch {i}" }, cancellationToken)).Ok, Is.True);
            }

            await history.WaitUntilArchivedAsync(room, 60, 0, cancellationToken);
            await history.LoseRoomInRedisAsync(room);   // the next message starts a new epoch, seq from 1
            for (var i = 1; i <= 60; i++)
            {
                Assert.That((await gina.RequestAsync(new { type = "sendMessage", text = $"second epoch {i}" }, cancellationToken)).Ok, Is.True);
            }
        }

        await history.WaitUntilArchivedAsync(room, 120, 0, cancellationToken);
        var page = await SignInAsync(history.A, "hank", room, cancellationToken);
        var items = page.Locator("#messages li.message");

        // The 5 Redis keeps cannot fill the list: a page of 50 follows at once, seq 6..55 of the current epoch.
        await Expect(items).ToHaveCountAsync(55, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(items.First).ToHaveTextAsync("gina: second epoch 6", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        // Then each scroll to the top: the rest of the current epoch and on into the older one, then its first 15.
        foreach (var (count, first) in new[] { (105, "gina: first epoch 16"), (120, "gina: first epoch 1") })
        {
            await ScrollListToTopAsync(page, cancellationToken);
            await Expect(items).ToHaveCountAsync(count, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
            await Expect(items.First).ToHaveTextAsync(first, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        }

        string[] everything = [.. Enumerable.Range(1, 60).Select(i => $"gina: first epoch {i}"), .. Enumerable.Range(1, 60).Select(i => $"gina: second epoch {i}")];
        await Expect(items).ToHaveTextAsync(everything, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        var epochs = await items.EvaluateAllAsync<string[]>("items => items.map(i => i.dataset.epoch)").WaitAsync(cancellationToken);
        Assert.That(epochs.Take(60).Distinct().Count(), Is.EqualTo(1));
        Assert.That(epochs.Skip(60).Distinct().Count(), Is.EqualTo(1));
        Assert.That(epochs[0], Is.Not.EqualTo(epochs[60]), "two epochs");
    }

    [Test, CancelAfter(90_000)]
    public async Task Alice_deletes_her_own_message_and_every_page_shows_message_deleted_in_its_place_while_bob_gets_no_delete_control_on_hers(
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("delete");
        await using var history = await StartHistoryHostsAsync(2, cancellationToken);
        var alice = await SignInAsync(history.A, "alice", room, cancellationToken);
        var bob = await SignInAsync(history.B, "bob", room, cancellationToken);
        await SendAsync(alice, "old secret", cancellationToken);   // only the database holds it once 5 more are stored
        await SendAsync(bob, "hi from bob", cancellationToken);
        foreach (var text in new[] { "filler 1", "filler 2", "filler 3", "recent secret", "filler 4" })
        {
            await SendAsync(alice, text, cancellationToken);
        }

        string[] conversation = ["alice: old secret", "bob: hi from bob", "alice: filler 1", "alice: filler 2", "alice: filler 3",
            "alice: recent secret", "alice: filler 4"];
        await ExpectMessagesAsync(alice, conversation, cancellationToken);
        await ExpectMessagesAsync(bob, conversation, cancellationToken);
        await history.WaitUntilArchivedAsync(room, 7, 0, cancellationToken);

        // A delete control on each of the reader's own messages, and on nobody else's.
        await Expect(bob.Locator("#messages li.message:has(button.delete)")).ToHaveTextAsync(["bob: hi from bob"], new() { Timeout = WaitMs })
            .WaitAsync(cancellationToken);
        await Expect(alice.Locator("#messages li.message:has(button.delete)")).ToHaveTextAsync(conversation.Where(t => t.StartsWith("alice:", StringComparison.Ordinal)),
            new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        // It asks first, inline: No keeps the message.
        var oldSecret = alice.Locator("#messages li.message").Nth(0);
        await oldSecret.GetByRole(AriaRole.Button, new() { Name = "Delete message" }).ClickAsync().WaitAsync(cancellationToken);
        var question = oldSecret.GetByRole(AriaRole.Group, new() { Name = "Delete this message?" });
        await Expect(question).ToBeVisibleAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(question.GetByRole(AriaRole.Button, new() { Name = "No" })).ToBeFocusedAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await AttachScreenshotAsync(alice, "delete-confirm.png", cancellationToken);
        await question.GetByRole(AriaRole.Button, new() { Name = "No" }).ClickAsync().WaitAsync(cancellationToken);
        await Expect(oldSecret).ToHaveTextAsync("alice: old secret", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        // Yes deletes: the old one from the database, the recent one where Redis still has it too.
        foreach (var index in new[] { 0, 5 })
        {
            var item = alice.Locator("#messages li.message").Nth(index);
            await item.GetByRole(AriaRole.Button, new() { Name = "Delete message" }).ClickAsync().WaitAsync(cancellationToken);
            await item.GetByRole(AriaRole.Button, new() { Name = "Yes" }).ClickAsync().WaitAsync(cancellationToken);
            conversation[index] = "alice: message deleted";
            foreach (var page in new[] { alice, bob })
            {
                await ExpectMessagesAsync(page, conversation, cancellationToken);
                await Expect(page.Locator("#messages li.message").Nth(index)).ToHaveClassAsync(new Regex(@"\bdeleted\b"), new() { Timeout = WaitMs })
                    .WaitAsync(cancellationToken);
            }
        }

        await Expect(alice.Locator("#messages li.message.deleted button")).ToHaveCountAsync(0, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(alice.Locator("#messages li.message.deleted .tombstone")).ToHaveCountAsync(2, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await AttachScreenshotAsync(bob, "deleted.png", cancellationToken);

        // Someone who comes later reads the tombstones in history: Redis's in the sign-in, the database's in the page above.
        var carol = await SignInAsync(history.B, "carol", room, cancellationToken);
        await ExpectMessagesAsync(carol, conversation, cancellationToken);
        await Expect(carol.Locator("#messages li.message.deleted")).ToHaveCountAsync(2, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(carol.Locator("#messages button.delete")).ToHaveCountAsync(0, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    [Test, CancelAfter(90_000)]
    public async Task The_search_box_shows_matches_newest_first_more_results_go_on_across_an_epoch_and_deleted_messages_never_show(
        CancellationToken cancellationToken)
    {
        var room = TestNames.Room("search");
        await using var history = await StartHistoryHostsAsync(1, cancellationToken);
        await using var carol = await ChatClient.SignInAsync(history.A.WebSocketUri, "carol", room, cancellationToken);
        for (var i = 1; i <= 12; i++)
        {
            await SendNoiseAndNotesAsync(i);
        }

        var draft = await carol.RequestAsync(new { type = "sendMessage", text = "release notes draft, delete me" }, cancellationToken);
        var epoch = (await carol.ExpectAsync(f => f.Type == "message" && f.Seq == draft.Seq, cancellationToken)).Epoch;
        Assert.That((await carol.RequestAsync(new { type = "deleteMessage", seq = draft.Seq, epoch }, cancellationToken)).Ok, Is.True);
        await history.WaitUntilArchivedAsync(room, 25, 1, cancellationToken);
        await history.LoseRoomInRedisAsync(room);
        for (var i = 13; i <= 24; i++)
        {
            await SendNoiseAndNotesAsync(i);
        }

        await history.WaitUntilArchivedAsync(room, 49, 1, cancellationToken);
        var page = await SignInAsync(history.A, "alice", room, cancellationToken);

        await page.Locator("#search-q").FillAsync("release notes").WaitAsync(cancellationToken);
        await page.Locator("#search-q").PressAsync("Enter").WaitAsync(cancellationToken);

        // 20 a page, newest first: the first ends in the older epoch, and More results goes on from there.
        var results = page.Locator("#search-results li");
        await Expect(results).ToHaveTextAsync(Notes(24, 5), new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#messages")).ToBeHiddenAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#search-status")).ToHaveTextAsync("20 messages match “release notes”, newest first.", new() { Timeout = WaitMs })
            .WaitAsync(cancellationToken);
        await AttachScreenshotAsync(page, "search.png", cancellationToken);
        await page.GetByRole(AriaRole.Button, new() { Name = "More results" }).ClickAsync().WaitAsync(cancellationToken);
        await Expect(results).ToHaveTextAsync(Notes(24, 1), new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#search-more")).ToBeHiddenAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#search-status")).ToHaveTextAsync("24 messages match “release notes”, newest first.", new() { Timeout = WaitMs })
            .WaitAsync(cancellationToken);

        // A result deleted while it is shown loses its text there too.
        var newest = await carol.RequestAsync(new { type = "history", limit = 2 }, cancellationToken);
        var notes24 = newest.Messages.Single(m => m.Text == "release notes 24");
        Assert.That((await carol.RequestAsync(new { type = "deleteMessage", seq = notes24.Seq, epoch = notes24.Epoch }, cancellationToken)).Ok, Is.True);
        await Expect(results.First).ToHaveTextAsync("carol: message deleted", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        // Close search: back to the chat, at its end.
        await page.GetByRole(AriaRole.Button, new() { Name = "Close search" }).ClickAsync().WaitAsync(cancellationToken);
        await Expect(page.Locator("#search-panel")).ToBeHiddenAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        var last = page.Locator("#messages li.message").Last;
        await Expect(last).ToHaveTextAsync("carol: lunch 24", new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(last).ToBeInViewportAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#search-results li")).ToHaveCountAsync(0, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);

        async Task SendNoiseAndNotesAsync(int i)
        {
            Assert.That((await carol.RequestAsync(new { type = "sendMessage", text = $"release notes {i}" }, cancellationToken)).Ok, Is.True);
            Assert.That((await carol.RequestAsync(new { type = "sendMessage", text = $"lunch {i}" }, cancellationToken)).Ok, Is.True);
        }

        static string[] Notes(int from, int to) => [.. Enumerable.Range(to, from - to + 1).Reverse().Select(i => $"carol: release notes {i}")];
    }

    [Test, CancelAfter(60_000)]
    public async Task Search_without_the_history_database_shows_the_servers_sentence_in_the_panel(CancellationToken cancellationToken)
    {
        var page = await SignInAsync(_hostA, "alice", TestNames.Room("nosearch"), cancellationToken);
        await SendAsync(page, "release notes", cancellationToken);

        await page.Locator("#search-q").FillAsync("release notes").WaitAsync(cancellationToken);
        await page.Locator("#search .search").ClickAsync().WaitAsync(cancellationToken);

        await Expect(page.Locator("#search-status")).ToHaveTextAsync(SearchNeedsDatabase, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#search-results li")).ToHaveCountAsync(0, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#search-more")).ToBeHiddenAsync(new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    /// <summary>The room's messages on the page, in order (notifications aside), none of the page's own still on its way.</summary>
    private static async Task ExpectMessagesAsync(IPage page, string[] texts, CancellationToken cancellationToken)
    {
        await Expect(page.Locator("#messages li[data-send]")).ToHaveCountAsync(0, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
        await Expect(page.Locator("#messages li.message")).ToHaveTextAsync(texts, new() { Timeout = WaitMs }).WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Scrolls the list to its top as a person does, up from where it is: once the page's own last scroll (keeping the
    /// reader's place after a page) has been seen, which the scroll events of a frame are before its animation frame.
    /// </summary>
    private static async Task ScrollListToTopAsync(IPage page, CancellationToken cancellationToken) =>
        await page.Locator("#messages").EvaluateAsync("""
            async list => {
              await new Promise(resolve => requestAnimationFrame(resolve));
              list.scrollTop = 0;
            }
            """).WaitAsync(cancellationToken);

    /// <summary>
    /// Instances on the test Redis (a key prefix of their own) and one fresh history database, keeping 5 messages of a
    /// room in Redis, with a rate limit that lets a test fill a room quickly.
    /// </summary>
    private static async Task<HistoryHosts> StartHistoryHostsAsync(int count, CancellationToken cancellationToken)
    {
        var database = await TestPostgres.CreateDatabaseAsync("page", cancellationToken);
        var prefix = $"p{Guid.NewGuid():N}:";
        var settings = new Dictionary<string, string?>
        {
            ["History:ConnectionString"] = database,
            ["Redis:KeyPrefix"] = prefix,
            ["Chat:HistoryLength"] = "5",
            ["Chat:RateLimitPerSecond"] = "1000",
            ["Chat:RateLimitBurst"] = "1000",
        };
        return new HistoryHosts(database, prefix, [.. Enumerable.Range(0, count).Select(_ => new ChatHost(TestRedis.ConnectionString, settings))]);
    }

    private sealed class HistoryHosts(string database, string keyPrefix, ChatHost[] hosts) : IAsyncDisposable
    {
        public ChatHost A => hosts[0];

        public ChatHost B => hosts[^1];

        /// <summary>Redis loses the room (a restart without persistence): its next message starts a new epoch.</summary>
        public async Task LoseRoomInRedisAsync(string room)
        {
            await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRedis.ConnectionString);
            await redis.GetDatabase().KeyDeleteAsync([$"{keyPrefix}{{{room}}}:meta", $"{keyPrefix}{{{room}}}:history"]);
        }

        /// <summary>
        /// Polls until the database holds <paramref name="messages"/> rows of the room, <paramref name="deleted"/> of
        /// them tombstones: it is written behind the chat, so there is no event to wait for.
        /// </summary>
        public async Task WaitUntilArchivedAsync(string room, long messages, long deleted, CancellationToken cancellationToken)
        {
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(cancellationToken);
            while (true)
            {
                await using var command = new NpgsqlCommand(
                    "select count(*), count(*) filter (where deleted) from chat_messages where room = $1", connection);
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = room });
                try
                {
                    await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                    await reader.ReadAsync(cancellationToken);
                    if (reader.GetInt64(0) == messages && reader.GetInt64(1) == deleted)
                    {
                        return;
                    }
                }
                catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
                {
                    // the server creates its tables with its first write
                }

                await Task.Delay(50, cancellationToken);
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var host in hosts)
            {
                await host.DisposeAsync();
            }
        }
    }
}
