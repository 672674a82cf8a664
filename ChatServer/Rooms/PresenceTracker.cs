using System.Text.Json;
using ChatServer.Hosting;
using ChatServer.Protocol;
using ChatServer.Webhooks;
using Microsoft.Extensions.Options;

namespace ChatServer.Rooms;

/// <summary>
/// Who is in which room, across instances (protocol extension). Each instance counts its own connections per room
/// and user, and tells the store only about the first and the last; the store keeps one entry per instance and user
/// with an expiry that <see cref="RefreshAsync"/> renews. An instance that dies stops renewing, so its users drop out
/// within <see cref="ChatOptions.PresenceTtl"/> plus one refresh interval, and the room hears that they left.
/// Each (room, user) has a gate held from the count's change until the store has it (and the room heard it), so the
/// store sees one user's joins and leaves in the order they happened, even from two connections at once; a refresh
/// holds the gates of the entries it renews. Presence is best effort: a failure is logged and never fails a frame.
/// With webhooks on, <see cref="PresenceWebhooks"/> hears each change the store decides (<c>user.joined</c>/<c>left</c>)
/// and keeps the user's entry across rooms beside the room's, under the same gate (<c>user.offline</c>).
/// </summary>
internal sealed class PresenceTracker(IPresenceStore store, IRoomChannel channel, InstanceId instance, IOptions<ChatOptions> options,
    TimeProvider time, ILogger<PresenceTracker> logger, PresenceWebhooks? webhooks = null)
{
    /// <summary>Renewals sent in one pipelined batch.</summary>
    private const int RefreshBatch = 1_000;

    private readonly Lock _sync = new();
    private readonly Dictionary<(string Room, string User), Slot> _slots = [];
    private readonly TimeSpan _ttl = options.Value.PresenceTtl;

    /// <summary>(room, user) pairs held now (tests): each goes with its last connection.</summary>
    internal int SlotCount
    {
        get
        {
            lock (_sync)
            {
                return _slots.Count;
            }
        }
    }

    /// <summary>
    /// This instance's connections of <paramref name="user"/> in <paramref name="room"/>, and whether a join, leave or
    /// refresh of them is still in flight (tests: once not busy, everything that change announced has been announced).
    /// </summary>
    internal (int Connections, bool Busy) Held(string room, string user)
    {
        lock (_sync)
        {
            return _slots.TryGetValue((room, user), out var slot) ? (slot.Connections, slot.Holders > 0) : (0, false);
        }
    }

    /// <summary>Counts one more connection of <paramref name="user"/> in <paramref name="room"/>; false if cancelled first (nothing counted).</summary>
    public async Task<bool> JoinedAsync(string room, string user, CancellationToken cancellationToken)
    {
        var slot = Hold(room, user);
        try
        {
            await slot.Gate.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Unhold((room, user), slot);
            return false;
        }

        try
        {
            if (++slot.Connections == 1)
            {
                var expiresAt = time.GetUtcNow() + _ttl;
                var userEntry = webhooks?.JoinedAsync(room, user, expiresAt);   // beside the room's entry; never throws
                await RunAsync(room, user, present: true, () => store.JoinAsync(room, instance.Value, user, expiresAt));
                await (userEntry ?? Task.CompletedTask);
            }

            return true;
        }
        finally
        {
            slot.Gate.Release();
            Unhold((room, user), slot);
        }
    }

    /// <summary>Counts one connection fewer; call once for each <see cref="JoinedAsync"/> that returned true.</summary>
    public async Task LeftAsync(string room, string user)
    {
        var slot = Hold(room, user);
        await slot.Gate.WaitAsync(CancellationToken.None);   // a leave always completes
        try
        {
            if (--slot.Connections == 0)
            {
                var userEntry = webhooks?.LeavingAsync(room, user);   // beside the room's entry; never throws
                await RunAsync(room, user, present: false, () => store.LeaveAsync(room, instance.Value, user));
                await (userEntry is null ? Task.CompletedTask : webhooks!.LeftAsync(userEntry, user));   // user.offline after user.left
            }
        }
        finally
        {
            slot.Gate.Release();
            Unhold((room, user), slot);
        }
    }

    /// <summary>
    /// Renews this instance's entries (which also sweeps other instances' expired ones), pipelined in batches. An entry
    /// whose gate is busy is skipped: the join or leave holding it is writing that entry right now.
    /// </summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        List<((string Room, string User) Key, Slot Slot)> held;
        lock (_sync)
        {
            held = [.. _slots.Where(s => s.Value.Connections > 0).Select(s => (s.Key, s.Value))];
            held.ForEach(h => h.Slot.Holders++);
        }

        try
        {
            foreach (var batch in held.Chunk(RefreshBatch))
            {
                cancellationToken.ThrowIfCancellationRequested();
                await RefreshBatchAsync(batch);
            }
        }
        finally
        {
            held.ForEach(h => Unhold(h.Key, h.Slot));
        }
    }

    /// <summary>Members of <paramref name="room"/>, announcing any that had expired.</summary>
    public async Task<IReadOnlyList<string>> MembersAsync(string room)
    {
        var (members, change) = await store.MembersAsync(room);
        await AnnounceAsync(room, change, user: "", present: false);
        return members;
    }

    private async Task RefreshBatchAsync(((string Room, string User) Key, Slot Slot)[] batch)
    {
        var locked = batch.Where(h => h.Slot.Gate.Wait(0)).ToArray();
        try
        {
            var renewing = locked.Where(h => h.Slot.Connections > 0).Select(h => h.Key).ToArray();
            if (renewing.Length == 0)
            {
                return;
            }

            var expiresAt = time.GetUtcNow() + _ttl;
            var userEntries = webhooks?.RefreshAsync(renewing, expiresAt);   // never throws
            var changes = await store.RefreshAsync(renewing, instance.Value, expiresAt);
            await (userEntries ?? Task.CompletedTask);
            for (var i = 0; i < renewing.Length; i++)
            {
                await AnnounceAsync(renewing[i].Room, changes[i], renewing[i].User, present: true);
            }
        }
        catch (StoreUnavailableException ex)
        {
            PresenceLog.Failed(logger, "(refresh)", ex);
        }
        finally
        {
            foreach (var (_, slot) in locked)
            {
                slot.Gate.Release();
            }
        }
    }

    private Slot Hold(string room, string user)
    {
        lock (_sync)
        {
            if (!_slots.TryGetValue((room, user), out var slot))
            {
                _slots[(room, user)] = slot = new Slot();
            }

            slot.Holders++;
            return slot;
        }
    }

    private void Unhold((string Room, string User) key, Slot slot)
    {
        lock (_sync)
        {
            if (--slot.Holders == 0 && slot.Connections == 0)
            {
                _slots.Remove(key);
                slot.Dispose();
            }
        }
    }

    private async Task RunAsync(string room, string user, bool present, Func<Task<PresenceChange>> operation)
    {
        try
        {
            await AnnounceAsync(room, await operation(), user, present);
        }
        catch (StoreUnavailableException ex)
        {
            PresenceLog.Failed(logger, room, ex);
        }
    }

    private async Task AnnounceAsync(string room, PresenceChange change, string user, bool present)
    {
        if (change.Changed)
        {
            webhooks?.Changed(room, user, present);
            await PublishAsync(room, new PresenceFrame { Room = room, User = user, Present = present });
        }

        foreach (var gone in change.Gone)
        {
            PresenceLog.Expired(logger, room);
            await (webhooks?.GoneAsync(room, gone) ?? Task.CompletedTask);
            await PublishAsync(room, new PresenceFrame { Room = room, User = gone, Present = false });
            await PublishAsync(room, NotificationFrame.Left(room, gone));
        }
    }

    private Task PublishAsync(string room, PresenceFrame frame) =>
        channel.PublishAsync(room, RoomEntry.EncodeNotification(RoomEntry.EveryMember, JsonSerializer.SerializeToUtf8Bytes(frame, ChatJsonContext.Wire.PresenceFrame)));

    private Task PublishAsync(string room, NotificationFrame frame) =>
        channel.PublishAsync(room, RoomEntry.EncodeNotification(RoomEntry.EveryMember, JsonSerializer.SerializeToUtf8Bytes(frame, ChatJsonContext.Wire.NotificationFrame)));

    /// <summary>This instance's connections of one user in one room, and the gate that orders their store updates.</summary>
    private sealed class Slot : IDisposable
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public int Connections;   // changed under Gate
        public int Holders;       // under the tracker's lock: callers between Hold and Unhold

        public void Dispose() => Gate.Dispose();
    }
}

internal static partial class PresenceLog
{
    [LoggerMessage(400, LogLevel.Warning, "Room {Room}: updating presence failed.")]
    public static partial void Failed(ILogger logger, string room, Exception exception);

    [LoggerMessage(401, LogLevel.Information, "Room {Room}: a user's presence expired (its instance stopped refreshing).")]
    public static partial void Expired(ILogger logger, string room);
}

/// <summary>Renews presence entries every third of <see cref="ChatOptions.PresenceTtl"/>: one timer per instance.</summary>
internal sealed class PresenceRefresher(PresenceTracker tracker, IOptions<ChatOptions> options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PresenceTtl / 3, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await tracker.RefreshAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }
}
