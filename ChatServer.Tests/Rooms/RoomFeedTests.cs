using System.Text;
using ChatServer.Hosting;
using ChatServer.Rooms;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChatServer.Tests.Rooms;

/// <summary>
/// The room feed alone, against a channel that loses, reorders and repeats entries and a log whose reads fail when told
/// to: every repair path, deterministic (the feed's pump is drained before each look; timers fire when the test says).
/// </summary>
[FixtureLifeCycle(LifeCycle.InstancePerTestCase)]
public sealed class RoomFeedTests : IAsyncDisposable
{
    private const int HistoryLength = 100;

    private readonly FakeLog _log = new(HistoryLength);
    private readonly FakeChannel _channel = new();
    private readonly ManualTime _time = new();
    private readonly RoomFeed _feed;

    public RoomFeedTests() =>
        _feed = new RoomFeed("r", _log, _channel, new RoomFeedSettings(_log.HistoryLength, TimeSpan.FromSeconds(1)),
            new ChatMetrics(new TestMeters(), TimeProvider.System), _time, NullLogger.Instance);

    public ValueTask DisposeAsync() => _feed.DisposeAsync();

    [Test, CancelAfter(5_000)]
    public async Task Repeated_and_reordered_entries_reach_members_once_in_seq_order(CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        var m = _log.Append(5);

        _channel.Carry(m[0], m[2], m[1], m[1], m[4], m[3], m[0]);

        Assert.That(await ReceivedAsync(member, cancellationToken), Is.EqualTo(new[] { "m1", "m2", "m3", "m4", "m5" }));
    }

    [Test, CancelAfter(5_000)]
    public async Task Lost_entries_are_read_from_the_log_with_one_ranged_read(CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        var m = _log.Append(5);
        _log.Reads.Clear();

        _channel.Carry(m[0], m[4]);   // 2, 3 and 4 lost in transit

        Assert.That(await ReceivedAsync(member, cancellationToken), Is.EqualTo(new[] { "m1", "m2", "m3", "m4", "m5" }));
        Assert.That(_log.Reads, Is.EqualTo(new[] { (LogRead.After, 1L, 3L, 3) }), "exactly the missing range, nothing more");
    }

    [Test, CancelAfter(5_000)]
    public async Task A_failed_read_holds_later_messages_and_the_next_message_repairs_it_without_a_gap(CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        var m = _log.Append(4);
        _log.FailNextReads = 1;

        _channel.Carry(m[0], m[2]);   // 2 lost, and reading it fails
        Assert.That(await ReceivedAsync(member, cancellationToken), Is.EqualTo(new[] { "m1" }), "3 waits for 2: nothing out of order, no gap");

        _channel.Carry(m[3]);
        Assert.That(await ReceivedAsync(member, cancellationToken), Is.EqualTo(new[] { "m2", "m3", "m4" }));
    }

    [Test, CancelAfter(5_000)]
    public async Task A_failed_read_is_retried_by_the_timer_when_no_message_follows(CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        var m = _log.Append(3);
        _log.FailNextReads = 1;

        _channel.Carry(m[0], m[2]);
        Assert.That(await ReceivedAsync(member, cancellationToken), Is.EqualTo(new[] { "m1" }));

        _time.FireAll();
        Assert.That(await member.NextAsync(2, cancellationToken), Is.EqualTo(new[] { "m2", "m3" }));
        Assert.That(await ReceivedAsync(member, cancellationToken), Is.Empty, "no gap frame: history held them all along");
    }

    [Test, CancelAfter(5_000)]
    public async Task A_trimmed_range_is_reported_as_one_gap_and_only_once(CancellationToken cancellationToken)
    {
        var log = new FakeLog(historyLength: 3);
        await using var feed = new RoomFeed("r", log, _channel, new RoomFeedSettings(3, TimeSpan.FromSeconds(1)),
            new ChatMetrics(new TestMeters(), TimeProvider.System), _time, NullLogger.Instance);
        var member = new FakeSink("a");
        Assert.That(await feed.AddAsync(new RoomMember(member, "r"), JoinRequest.SignIn, Ack, cancellationToken), Is.True);
        var m = log.Append(6);   // the log keeps 4..6

        _channel.Carry(m[0], m[5], m[2], m[1]);   // 2..5 lost, then late copies of 3 and 2
        await feed.DrainAsync(cancellationToken);
        _channel.Carry(log.Append());
        await feed.DrainAsync(cancellationToken);

        Assert.That(member.Received(), Is.EqualTo(new[] { "ack ", "m1", "gap2-3", "m4", "m5", "m6", "m7" }));
    }

    [Test, CancelAfter(5_000)]
    public async Task A_new_epoch_mid_stream_starts_over_at_one_and_late_copies_of_the_old_one_are_ignored(CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        var old = _log.Append(3);
        _channel.Carry(old[0], old[1]);
        _log.Restart("epoch2");           // the store lost its data
        var fresh = _log.Append(3);

        _channel.Carry(fresh[1], old[2], fresh[0], fresh[2]);   // epoch2's 1 lost, the old 3 arrives late

        Assert.That(await ReceivedAsync(member, cancellationToken),
            Is.EqualTo(new[] { "m1", "m2", "gap1-2", "m1@epoch2", "m2@epoch2", "m3@epoch2" }), "the old epoch's history is gone: one gap");
    }

    [Test, CancelAfter(5_000)]
    public async Task A_store_that_went_backward_under_the_same_epoch_is_made_to_start_a_new_one_and_members_are_told(
        CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        _channel.Carry(_log.Append(5));
        await _feed.DrainAsync(cancellationToken);
        Assert.That(_feed.Seen, Is.EqualTo(new LogMark("epoch1", 5)), "what appends from this instance pass");
        _log.LoseTail(2);   // a failover to a replica that had only 1..3

        await _feed.CatchUpAsync(cancellationToken);   // the reconnect after the failover
        Assert.That((_log.Epoch, _log.Head), Is.EqualTo(("epoch1+", 0L)), "the read passed the mark; the log started over");
        _channel.Carry(_log.Append(2));

        Assert.That(await ReceivedAsync(member, cancellationToken),
            Is.EqualTo(new[] { "m1", "m2", "m3", "m4", "m5", "gap1-5", "m1@epoch1+", "m2@epoch1+" }));
        Assert.That(_feed.Seen, Is.EqualTo(new LogMark("epoch1+", 2)));
    }

    [Test, CancelAfter(5_000)]
    public async Task A_join_racing_live_traffic_gets_no_gap_and_no_duplicate_between_its_ack_and_what_follows(CancellationToken cancellationToken)
    {
        var early = await JoinAsync("early", JoinRequest.SignIn, cancellationToken);
        var m = _log.Append(3);
        _channel.Carry(m[0]);   // 2 and 3 are stored and still in flight

        var signedIn = await JoinAsync("late", JoinRequest.SignIn, cancellationToken);
        var resumed = await JoinAsync("back", JoinRequest.Resume(since: 1, epoch: "epoch1"), cancellationToken);
        _channel.Carry(m[1], m[2], _log.Append());

        Assert.That(await ReceivedAsync(early, cancellationToken), Is.EqualTo(new[] { "m1", "m2", "m3", "m4" }));
        Assert.That(await ReceivedAsync(signedIn, cancellationToken), Is.EqualTo(new[] { "ack 1,2,3", "m4" }));
        Assert.That(await ReceivedAsync(resumed, cancellationToken), Is.EqualTo(new[] { "ack 2,3", "m4" }));
    }

    [Test, CancelAfter(5_000)]
    public async Task A_join_while_a_repair_read_is_failing_delivers_the_held_messages_first(CancellationToken cancellationToken)
    {
        var early = await JoinAsync("early", JoinRequest.SignIn, cancellationToken);
        var m = _log.Append(3);
        _log.FailNextReads = 1;
        _channel.Carry(m[0], m[2]);   // 3 held, 2 unreadable for now

        var late = await JoinAsync("late", JoinRequest.SignIn, cancellationToken);

        Assert.That(await ReceivedAsync(early, cancellationToken), Is.EqualTo(new[] { "m1", "m2", "m3" }));
        Assert.That(await ReceivedAsync(late, cancellationToken), Is.EqualTo(new[] { "ack 1,2,3" }));
    }

    [Test, CancelAfter(5_000)]
    public async Task A_catch_up_after_a_restore_delivers_what_the_channel_lost_with_one_ranged_read(CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        var m = _log.Append(3);
        _channel.Carry(m[0]);   // 2 and 3 lost while the subscription was down, and nothing follows
        await _feed.DrainAsync(cancellationToken);
        _log.Reads.Clear();

        await _feed.CatchUpAsync(cancellationToken);

        Assert.That(await ReceivedAsync(member, cancellationToken), Is.EqualTo(new[] { "m1", "m2", "m3" }));
        Assert.That(_log.Reads, Is.EqualTo(new[] { (LogRead.After, 1L, (long)HistoryLength, 2) }));
    }

    [Test, CancelAfter(5_000)]
    public async Task Notifications_reach_every_member_but_the_one_they_came_from(CancellationToken cancellationToken)
    {
        var alice = await JoinAsync("alice", JoinRequest.SignIn, cancellationToken);
        var bob = await JoinAsync("bob", JoinRequest.SignIn, cancellationToken);

        _channel.Carry(RoomEntry.EncodeNotification("alice", """{"type":"notification"}"""u8));

        Assert.That(await ReceivedAsync(alice, cancellationToken), Is.Empty);
        Assert.That(await ReceivedAsync(bob, cancellationToken), Is.EqualTo(new[] { "notification" }));
    }

    [Test, CancelAfter(5_000)]
    public async Task A_join_whose_read_fails_changes_nothing(CancellationToken cancellationToken)
    {
        var member = await JoinAsync("a", JoinRequest.SignIn, cancellationToken);
        var late = new FakeSink("late");
        _log.FailNextReads = 1;

        Assert.ThrowsAsync<StoreUnavailableException>(() => _feed.AddAsync(new RoomMember(late, "r"), JoinRequest.SignIn, Ack, cancellationToken));
        _channel.Carry(_log.Append());

        Assert.That(await ReceivedAsync(member, cancellationToken), Is.EqualTo(new[] { "m1" }));
        Assert.That(late.Received(), Is.Empty);
        Assert.That(_feed.Count, Is.EqualTo(1));
    }

    /// <summary>Joins a member and drops its ack from what the sink shows next (the tests that care look at acks themselves).</summary>
    private async Task<FakeSink> JoinAsync(string id, JoinRequest request, CancellationToken cancellationToken)
    {
        var sink = new FakeSink(id);
        Assert.That(await _feed.AddAsync(new RoomMember(sink, "r"), request, Ack, cancellationToken), Is.True);
        if (request is SignInJoin && _log.Head == 0)
        {
            Assert.That(sink.Received(), Is.EqualTo(new[] { "ack " }));
        }

        return sink;
    }

    private async Task<List<string>> ReceivedAsync(FakeSink sink, CancellationToken cancellationToken)
    {
        await _feed.DrainAsync(cancellationToken);
        return sink.Received();
    }

    private static byte[] Ack(LogSlice slice) =>
        Encoding.UTF8.GetBytes($"ack {string.Join(',', slice.Messages.Select(m => m.Seq))}");
}
