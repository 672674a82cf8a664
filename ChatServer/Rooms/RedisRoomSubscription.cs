using System.Text.Json;
using ChatServer.Protocol;
using StackExchange.Redis;

namespace ChatServer.Rooms;

/// <summary>
/// This instance's subscription to one room's channel, and its repair of what pub/sub loses. Redis pub/sub is
/// at-most-once: while the subscription connection blips, published messages are gone for this instance even though
/// its clients stay connected. So it tracks the last <c>seq</c> it delivered; a message that skips ahead first makes it
/// deliver the missing range from history, and where history no longer holds it, a <c>gap</c> frame says so
/// (PROTOCOL.md: no gaps while connected, but for a <c>gap</c> frame). The gate keeps deliveries and catch-ups in order.
/// </summary>
internal sealed class RedisRoomSubscription(RedisRoomBus bus, string room, Action<RoomEntry> deliver, ILogger logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public string Room => room;
    private ChannelMessageQueue? _queue;
    private string _epoch = "";
    private long _lastSeq;
    private bool _disposed;

    /// <summary>Subscribes, then reads where the room stands: nothing up to there is this instance's to deliver.</summary>
    public async Task StartAsync()
    {
        await _gate.WaitAsync();
        try
        {
            _queue = await bus.SubscribeChannelAsync(room);
            _queue.OnMessage(OnMessageAsync);
            var history = await bus.ReadAsync(room);
            (_epoch, _lastSeq) = (history.Epoch, history.Seq);
        }
        catch
        {
            await UnsubscribeAsync();
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Delivers whatever history holds beyond the last delivered message (after a reconnect).</summary>
    public async Task CatchUpAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (_disposed)
            {
                return;
            }

            var history = await bus.ReadAsync(room);
            if (!string.Equals(history.Epoch, _epoch, StringComparison.Ordinal))
            {
                // Redis lost the room's data: a new generation starts, and its messages so far are all new to us.
                (_epoch, _lastSeq) = (history.Epoch, 0);
            }

            if (history.Seq > _lastSeq)
            {
                RoomLog.CaughtUp(logger, room, history.Seq - _lastSeq);
                bus.Metrics.GapRepaired();   // a reconnect cost messages: the same repair as a seq jump
                DeliverRange(history, _lastSeq + 1, history.Seq);
            }
        }
        catch (StoreUnavailableException ex)
        {
            RoomLog.CatchUpFailed(logger, room, ex);   // the next message, or the next reconnect, tries again
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        try
        {
            _disposed = true;
            await UnsubscribeAsync();
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task OnMessageAsync(ChannelMessage message)
    {
        if (!RoomEntry.TryParse((byte[])message.Message!, out var entry))
        {
            RoomLog.BadEntry(logger, room);
            return;
        }

        await _gate.WaitAsync();
        try
        {
            if (_disposed)
            {
                return;
            }

            if (entry.Kind != RoomEntryKind.Message)
            {
                deliver(entry);
                return;
            }

            var sameEpoch = string.Equals(entry.Epoch, _epoch, StringComparison.Ordinal);
            if (sameEpoch && entry.Seq <= _lastSeq)
            {
                return;   // already delivered by a catch-up
            }

            var expected = sameEpoch ? _lastSeq + 1 : 1;   // a new epoch starts at 1
            if (entry.Seq > expected)
            {
                RoomLog.GapDetected(logger, room, expected, entry.Seq - 1);
                bus.Metrics.GapRepaired();
                await RepairAsync(entry.Epoch, expected, entry.Seq - 1);
            }

            bus.Metrics.MessageFannedOut(entry.Json.Span);
            Deliver(entry);
        }
        catch (Exception ex)   // the library would swallow it silently
        {
            RoomLog.DeliveryFailed(logger, room, ex);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RepairAsync(string epoch, long from, long to)
    {
        RoomHistory? history = null;
        try
        {
            history = await bus.ReadAsync(room);
        }
        catch (StoreUnavailableException ex)
        {
            RoomLog.CatchUpFailed(logger, room, ex);
        }

        if (history is not null && string.Equals(history.Epoch, epoch, StringComparison.Ordinal))
        {
            _epoch = epoch;
            DeliverRange(history, from, to);
        }
        else
        {
            SendGap(epoch, from, to);
        }
    }

    /// <summary>Delivers <paramref name="from"/>..<paramref name="to"/> from history; what it lacks becomes a gap.</summary>
    private void DeliverRange(RoomHistory history, long from, long to)
    {
        var next = from;
        foreach (var message in history.Messages)
        {
            if (message.Seq < next || message.Seq > to)
            {
                continue;
            }

            if (message.Seq > next)
            {
                SendGap(history.Epoch, next, message.Seq - 1);
            }

            Deliver(message);
            next = message.Seq + 1;
        }

        if (next <= to)
        {
            SendGap(history.Epoch, next, to);
        }
    }

    private void Deliver(RoomEntry entry)
    {
        deliver(entry);
        (_epoch, _lastSeq) = (entry.Epoch, entry.Seq);
    }

    private void SendGap(string epoch, long from, long to)
    {
        RoomLog.GapUnrecoverable(logger, room, from, to);
        var json = JsonSerializer.SerializeToUtf8Bytes(
            new GapFrame { Room = room, Recovered = false, From = from, To = to }, ChatJsonContext.Wire.GapFrame);
        deliver(new RoomEntry(RoomEntryKind.Gap, to, epoch, "", json));
        (_epoch, _lastSeq) = (epoch, to);
    }

    private async Task UnsubscribeAsync()
    {
        if (_queue is null)
        {
            return;
        }

        try
        {
            await _queue.UnsubscribeAsync();
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            RoomLog.UnsubscribeFailed(logger, room, ex);   // Redis forgets it anyway when the connection drops
        }

        _queue = null;
    }
}
