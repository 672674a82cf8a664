using ChatServer.Hosting;
using ChatServer.Rooms;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ChatServer.Tests.Rooms;

/// <summary>The tracker's ordering and batching, against a store that records calls and holds one when told to.</summary>
public sealed class PresenceTrackerTests
{
    [Test, CancelAfter(5_000)]
    public async Task A_join_of_the_same_user_waits_until_the_store_has_the_leave_before_it(CancellationToken cancellationToken)
    {
        var store = new RecordingStore();
        var tracker = Tracker(store);
        Assert.That(await tracker.JoinedAsync("r", "alice", cancellationToken), Is.True);   // tab 1
        store.HoldLeaves = new TaskCompletionSource<PresenceChange>(TaskCreationOptions.RunContinuationsAsynchronously);

        var leaving = tracker.LeftAsync("r", "alice");                    // tab 1 closes ...
        var joining = tracker.JoinedAsync("r", "alice", cancellationToken);   // ... as its reload signs in

        Assert.That(store.Calls, Is.EqualTo(new[] { "join alice", "leave alice" }), "the join is not sent while the leave is in flight");
        store.HoldLeaves.SetResult(new PresenceChange(true, []));
        await leaving;
        Assert.That(await joining, Is.True);
        Assert.That(store.Calls, Is.EqualTo(new[] { "join alice", "leave alice", "join alice" }), "the store ends with alice present");
    }

    [Test, CancelAfter(5_000)]
    public async Task A_refresh_renews_every_entry_in_batches_not_one_call_each(CancellationToken cancellationToken)
    {
        var store = new RecordingStore();
        var tracker = Tracker(store);
        for (var i = 0; i < 2_500; i++)
        {
            await tracker.JoinedAsync($"room{i % 50}", $"user{i}", cancellationToken);
        }

        store.Calls.Clear();
        await tracker.RefreshAsync(cancellationToken);

        Assert.That(store.Calls, Is.EqualTo(new[] { "refresh 1000", "refresh 1000", "refresh 500" }));
    }

    [Test, CancelAfter(5_000)]
    public async Task A_second_connection_of_a_user_changes_nothing_in_the_store_until_the_last_one_leaves(CancellationToken cancellationToken)
    {
        var store = new RecordingStore();
        var tracker = Tracker(store);

        await tracker.JoinedAsync("r", "bob", cancellationToken);
        await tracker.JoinedAsync("r", "bob", cancellationToken);
        await tracker.LeftAsync("r", "bob");
        Assert.That(store.Calls, Is.EqualTo(new[] { "join bob" }));

        await tracker.LeftAsync("r", "bob");
        Assert.That(store.Calls, Is.EqualTo(new[] { "join bob", "leave bob" }));
    }

    private static PresenceTracker Tracker(IPresenceStore store) =>
        new(store, new FakeChannel(), new InstanceId(), Options.Create(new ChatOptions()), TimeProvider.System, NullLogger<PresenceTracker>.Instance);

    private sealed class RecordingStore : IPresenceStore
    {
        public List<string> Calls { get; } = [];

        public TaskCompletionSource<PresenceChange>? HoldLeaves { get; set; }

        public Task<PresenceChange> JoinAsync(string room, string instance, string user, DateTimeOffset expiresAt)
        {
            Calls.Add($"join {user}");
            return Task.FromResult(new PresenceChange(true, []));
        }

        public Task<PresenceChange> LeaveAsync(string room, string instance, string user)
        {
            Calls.Add($"leave {user}");
            return HoldLeaves?.Task ?? Task.FromResult(new PresenceChange(true, []));
        }

        public Task<IReadOnlyList<PresenceChange>> RefreshAsync(IReadOnlyList<(string Room, string User)> entries, string instance,
            DateTimeOffset expiresAt)
        {
            Calls.Add($"refresh {entries.Count}");
            return Task.FromResult<IReadOnlyList<PresenceChange>>([.. entries.Select(_ => PresenceChange.None)]);
        }

        public Task<(IReadOnlyList<string> Members, PresenceChange Change)> MembersAsync(string room) =>
            Task.FromResult<(IReadOnlyList<string>, PresenceChange)>(([], PresenceChange.None));
    }
}
