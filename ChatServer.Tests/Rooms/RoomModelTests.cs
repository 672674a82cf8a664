using System.Text;
using ChatServer.Hosting;
using ChatServer.Protocol;
using ChatServer.Rooms;
using Microsoft.Extensions.Options;

namespace ChatServer.Tests.Rooms;

public sealed class RoomModelTests
{
    [Test]
    public void A_message_entry_round_trips_its_header_and_json()
    {
        var stored = RoomEntry.EncodeMessage(MessageEncoding.WritePrefix("r", "u", "hi", DateTimeOffset.UnixEpoch), 42, "ep0ch");

        Assert.That(RoomEntry.TryParse(stored, out var entry), Is.True);
        Assert.That((entry.Kind, entry.Seq, entry.Epoch), Is.EqualTo((RoomEntryKind.Message, 42L, "ep0ch")));
        Assert.That(Encoding.UTF8.GetString(entry.Json.Span), Is.EqualTo(
            """{"type":"message","room":"r","user":"u","text":"hi","ts":"1970-01-01T00:00:00.000Z","seq":42,"epoch":"ep0ch"}"""));
    }

    [Test]
    public void A_notification_entry_names_its_origin()
    {
        var stored = RoomEntry.EncodeNotification("abc-7", """{"type":"notification"}"""u8);
        Assert.That(RoomEntry.TryParse(stored, out var entry), Is.True);
        Assert.That((entry.Kind, entry.Origin), Is.EqualTo((RoomEntryKind.Notification, "abc-7")));
        Assert.That(Encoding.UTF8.GetString(entry.Json.Span), Is.EqualTo("""{"type":"notification"}"""));
    }

    [TestCase("")]
    [TestCase("x 1 e {}")]
    [TestCase("m x e {}")]
    [TestCase("m 1")]
    [TestCase("n  {}")]
    public void Unreadable_entries_are_refused(string stored) =>
        Assert.That(RoomEntry.TryParse(Encoding.UTF8.GetBytes(stored), out _), Is.False);

    [Test]
    public void Timestamps_have_exactly_three_fraction_digits_and_Z()
    {
        var prefix = Encoding.UTF8.GetString(MessageEncoding.WritePrefix("r", "u", "t", new DateTimeOffset(2026, 11, 24, 10, 0, 0, 120, TimeSpan.FromHours(2))));
        Assert.That(prefix, Does.EndWith("\"ts\":\"2026-11-24T08:00:00.120Z\""));
    }

    /// <summary>A read of the log: head <paramref name="seq"/>, keeping <paramref name="kept"/>.</summary>
    private static LogSlice History(string epoch, long seq, params long[] kept) =>
        new(epoch, seq, kept.Length > 0 ? kept[0] : seq + 1, [.. kept.Select(s => new RoomEntry(RoomEntryKind.Message, s, epoch, "", Array.Empty<byte>()))]);

    private static (IReadOnlyList<RoomEntry> Messages, bool Recovered) Since(LogSlice log, long since, string? epoch) =>
        ((ResumeJoin)JoinRequest.Resume(since, epoch)).Recover(log);

    [Test]
    public void Since_returns_only_newer_messages_and_recovered_when_nothing_was_trimmed()
    {
        var (messages, recovered) = Since(History("e", 9, 5, 6, 7, 8, 9), 6, "e");
        Assert.That(messages.Select(m => m.Seq), Is.EqualTo(new long[] { 7, 8, 9 }));
        Assert.That(recovered, Is.True);
    }

    [Test]
    public void Since_just_before_the_oldest_kept_message_is_recovered() =>
        Assert.That(Since(History("e", 9, 5, 6, 7, 8, 9), 4, "e").Recovered, Is.True);

    [Test]
    public void Since_before_trimmed_messages_is_not_recovered_and_returns_the_history()
    {
        var (messages, recovered) = Since(History("e", 9, 5, 6, 7, 8, 9), 3, "e");
        Assert.That(recovered, Is.False);
        Assert.That(messages.Select(m => m.Seq), Is.EqualTo(new long[] { 5, 6, 7, 8, 9 }));
    }

    [TestCase(10, "e")]
    [TestCase(2, "other")]
    public void A_since_beyond_seq_or_another_epoch_means_the_history_restarted(long since, string epoch)
    {
        var (messages, recovered) = Since(History("e", 9, 5, 6, 7, 8, 9), since, epoch);
        Assert.That(recovered, Is.False);
        Assert.That(messages, Has.Count.EqualTo(5));
    }

    [Test]
    public void Since_on_an_empty_room_is_recovered()
    {
        var (messages, recovered) = Since(History("e", 0), 0, null);
        Assert.That((messages.Count, recovered), Is.EqualTo((0, true)));
    }

    [TestCase("Latest", 0, 3, 8, 10)]     // the newest three of 5..10
    [TestCase("Latest", 0, 50, 5, 10)]    // more than kept: all that is kept
    [TestCase("Before", 7, 3, 5, 6)]      // older than 7, clipped at the oldest kept
    [TestCase("Before", 99, 2, 9, 10)]    // a position past the head reads from the head
    [TestCase("After", 6, 2, 7, 8)]
    [TestCase("After", 1, 2, 5, 6)]       // trimmed ones are skipped: from the oldest kept
    [TestCase("After", 10, 5, 11, 10)]    // nothing newer: an empty range
    public void Ranges_are_index_arithmetic_on_a_contiguous_log(string read, long position, long count, long from, long to) =>
        Assert.That(LogSlice.Range(Enum.Parse<LogRead>(read), position, count, first: 5, head: 10), Is.EqualTo((from, to)));

    [TestCase("general", "chat:{general}:history")]
    [TestCase("a}b", "chat:{a%7Db}:history")]
    [TestCase("{x}", "chat:{%7Bx%7D}:history")]
    [TestCase("100%", "chat:{100%25}:history")]
    [TestCase("*", "chat:{*}:history")]
    public void Keys_share_one_hash_tag_that_no_room_name_can_break(string room, string expected)
    {
        var keys = new RoomKeys(Options.Create(new RedisOptions()));
        Assert.That((string?)keys.History(room), Is.EqualTo(expected));
        Assert.That(keys.Channel(room).ToString(), Is.EqualTo(expected.Replace(":history", ":messages", StringComparison.Ordinal)));
        Assert.That(keys.Channel(room).IsPattern, Is.False, "channels are literal: '*' is a room name, not a pattern");
    }

    [Test]
    public void Escaping_is_one_to_one() =>
        Assert.That(RoomKeys.Escape("%7D"), Is.Not.EqualTo(RoomKeys.Escape("}")));
}
