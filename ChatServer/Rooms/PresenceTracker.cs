using System.Text.Json;
using ChatServer.Hosting;
using ChatServer.Protocol;
using Microsoft.Extensions.Options;

namespace ChatServer.Rooms;

/// <summary>
/// Who is in which room, across instances (protocol extension). Each instance counts its own connections per room
/// and user, and tells the bus only about the first and the last; the bus keeps one entry per instance and user with an
/// expiry that <see cref="RefreshAsync"/> renews. An instance that dies stops renewing, so its users drop out within
/// <see cref="ChatOptions.PresenceTtl"/> plus one refresh interval, and the room hears that they left.
/// Presence is best effort: a failure is logged and never fails the frame that caused it.
/// </summary>
internal sealed class PresenceTracker(IRoomBus bus, InstanceId instance, IOptions<ChatOptions> options, TimeProvider time,
    ILogger<PresenceTracker> logger)
{
    private readonly Lock _sync = new();
    private readonly Dictionary<(string Room, string User), int> _local = [];
    private readonly TimeSpan _ttl = options.Value.PresenceTtl;

    public async Task JoinedAsync(string room, string user)
    {
        lock (_sync)
        {
            var count = _local.GetValueOrDefault((room, user)) + 1;
            _local[(room, user)] = count;
            if (count > 1)
            {
                return;
            }
        }

        await RunAsync(room, user, present: true, () => bus.JoinPresenceAsync(room, instance.Value, user, time.GetUtcNow() + _ttl));
    }

    public async Task LeftAsync(string room, string user)
    {
        lock (_sync)
        {
            var count = _local.GetValueOrDefault((room, user)) - 1;
            if (count > 0)
            {
                _local[(room, user)] = count;
                return;
            }

            _local.Remove((room, user));
        }

        await RunAsync(room, user, present: false, () => bus.LeavePresenceAsync(room, instance.Value, user));
    }

    /// <summary>Renews this instance's entries (which also sweeps other instances' expired ones).</summary>
    public async Task RefreshAsync()
    {
        (string Room, string User)[] entries;
        lock (_sync)
        {
            entries = [.. _local.Keys];
        }

        foreach (var (room, user) in entries)
        {
            await RunAsync(room, user, present: true, () => bus.JoinPresenceAsync(room, instance.Value, user, time.GetUtcNow() + _ttl));
        }
    }

    /// <summary>Members of <paramref name="room"/>, announcing any that had expired.</summary>
    public async Task<IReadOnlyList<string>> MembersAsync(string room)
    {
        var (members, change) = await bus.MembersAsync(room);
        await AnnounceAsync(room, change, user: "", present: false);
        return members;
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
            await PublishAsync(room, new PresenceFrame { Room = room, User = user, Present = present });
        }

        foreach (var gone in change.Gone)
        {
            PresenceLog.Expired(logger, room);
            await PublishAsync(room, new PresenceFrame { Room = room, User = gone, Present = false });
            await PublishAsync(room, NotificationFrame.Left(room, gone));
        }
    }

    private Task PublishAsync(string room, PresenceFrame frame) =>
        bus.PublishAsync(room, RoomEntry.EncodeNotification("-", JsonSerializer.SerializeToUtf8Bytes(frame, ChatJsonContext.Wire.PresenceFrame)));

    private Task PublishAsync(string room, NotificationFrame frame) =>
        bus.PublishAsync(room, RoomEntry.EncodeNotification("-", JsonSerializer.SerializeToUtf8Bytes(frame, ChatJsonContext.Wire.NotificationFrame)));
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
                await tracker.RefreshAsync();
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }
}
