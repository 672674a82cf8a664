using System.Text.Json;
using ChatServer.Protocol;
using ChatServer.Rooms;

namespace ChatServer.Connections;

/// <summary>
/// What one connection is in the chat: its user and room. Frames reach it one at a time from the receive loop; the
/// close path may run beside them, so both take <see cref="_gate"/> (it is held across awaits on Redis).
/// A frame that fails changes nothing: a move to another room leaves the old room only once the new one is joined.
/// </summary>
internal sealed class ChatSession(ChatConnection connection, RoomRegistry registry, IRoomBus bus, PresenceTracker presence,
    TimeProvider time, ILogger logger) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private RoomMember? _member;
    private bool _closed;

    public ChatConnection Connection => connection;

    /// <summary>The connection's identity while authentication is on (PROTOCOL.md, "Authentication"); else <c>null</c>.</summary>
    public Auth.ConnectionAuth? Auth { get; set; }

    /// <summary><c>signin</c> (announced) or <c>updateSocketId</c> (silent, with optional <c>since</c> recovery).</summary>
    public async Task JoinAsync(JsonElement? id, string user, string room, bool announce, bool isUpdate, long? since, string? epoch)
    {
        await _gate.WaitAsync();
        try
        {
            if (_closed)
            {
                return;
            }

            var current = _member;
            if (current is not null && current.Room == room)
            {
                await RejoinAsync(current, id, user, isUpdate, since, epoch);
                return;
            }

            var member = new RoomMember(connection, room, user);
            RoomHistory history;
            try
            {
                await registry.JoinAsync(member);
            }
            catch (StoreUnavailableException)
            {
                SendAck(AckFrame.Rejected(id, StoreUnavailableException.ClientError));
                return;
            }

            try
            {
                history = await bus.ReadAsync(room);
            }
            catch (StoreUnavailableException)
            {
                await registry.LeaveAsync(member);
                SendAck(AckFrame.Rejected(id, StoreUnavailableException.ClientError));
                return;
            }

            if (current is not null)
            {
                await LeaveAsync(current, announce);
            }

            _member = member;
            member.GoLive(Serialize(JoinAck(id, room, isUpdate, since, epoch, history)), history.Epoch, history.Seq);
            if (announce)
            {
                await PublishNotificationAsync(room, NotificationFrame.Joined(room, user));
            }

            await presence.JoinedAsync(room, user);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Extension <c>members</c>: each user in the connection's room once, across instances.</summary>
    public Task MembersAsync(JsonElement? id) => InRoomAsync(id, async member =>
    {
        var members = await presence.MembersAsync(member.Room);
        return new AckFrame { Id = id, Ok = true, Room = member.Room, Members = members };
    });

    /// <summary>
    /// Extension <c>history</c>: up to <paramref name="limit"/> stored messages older than <paramref name="before"/>,
    /// oldest first, and whether older ones remain. Without <paramref name="before"/>, the newest.
    /// </summary>
    public Task HistoryAsync(JsonElement? id, long? before, int limit) => InRoomAsync(id, async member =>
    {
        var history = await bus.ReadAsync(member.Room);
        var older = history.Messages.Where(m => m.Seq < (before ?? long.MaxValue)).ToList();
        var page = older.Skip(Math.Max(0, older.Count - limit)).ToList();
        return new AckFrame
        {
            Id = id, Ok = true, Room = member.Room, Epoch = history.Epoch, Messages = Raw(page), More = older.Count > page.Count,
        };
    });

    public Task SendMessageAsync(JsonElement? id, string text) => InRoomAsync(id, async member =>
    {
        ConnectionLog.MessageText(logger, connection.Id, FrameTypes.SendMessage, member.User, member.Room, text);
        var prefix = MessageEncoding.WritePrefix(member.Room, member.User, text, time.GetUtcNow());
        var (seq, _) = await bus.AppendAsync(member.Room, prefix);
        return new AckFrame { Id = id, Ok = true, Seq = seq };
    });

    /// <summary>
    /// Runs a frame that needs a room under the gate, and acks it: with <paramref name="action"/>'s ack, with
    /// "User session not found." before sign-in, or with the store-unavailable error. Nothing after a close.
    /// </summary>
    private async Task InRoomAsync(JsonElement? id, Func<RoomMember, Task<AckFrame>> action)
    {
        await _gate.WaitAsync();
        try
        {
            if (_closed)
            {
                return;
            }

            if (_member is not { } member)
            {
                SendAck(AckFrame.Rejected(id, "User session not found."));
                return;
            }

            try
            {
                SendAck(await action(member));
            }
            catch (StoreUnavailableException)
            {
                SendAck(AckFrame.Rejected(id, StoreUnavailableException.ClientError));
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Leaves the room with a leave notification; later frames are ignored. Delivery stops before the first await, even
    /// while a frame in flight still holds the gate. Safe to call more than once.
    /// </summary>
    public async Task CloseAsync()
    {
        Volatile.Read(ref _member)?.MarkLeft();
        await _gate.WaitAsync();
        try
        {
            _closed = true;
            if (_member is { } member)
            {
                _member = null;
                await LeaveAsync(member, announce: true);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    public void SendAck(AckFrame ack) => connection.TryEnqueue(Serialize(ack));

    /// <summary>Signing in again to the room the connection is in: fresh history, no announcement (PROTOCOL.md).</summary>
    private async Task RejoinAsync(RoomMember member, JsonElement? id, string user, bool isUpdate, long? since, string? epoch)
    {
        member.BeginResync();
        RoomHistory history;
        try
        {
            history = await bus.ReadAsync(member.Room);
        }
        catch (StoreUnavailableException)
        {
            member.GoLive(null, "", 0);   // back to live delivery with what it had; nothing changed
            SendAck(AckFrame.Rejected(id, StoreUnavailableException.ClientError));
            return;
        }

        var previousUser = member.User;
        member.User = user;
        if (previousUser != user)
        {
            await presence.LeftAsync(member.Room, previousUser);
            await presence.JoinedAsync(member.Room, user);
        }

        member.GoLive(Serialize(JoinAck(id, member.Room, isUpdate, since, epoch, history)), history.Epoch, history.Seq);
    }

    private async Task LeaveAsync(RoomMember member, bool announce)
    {
        await registry.LeaveAsync(member);
        await presence.LeftAsync(member.Room, member.User);
        if (announce)
        {
            await PublishNotificationAsync(member.Room, NotificationFrame.Left(member.Room, member.User));
        }
    }

    private async Task PublishNotificationAsync(string room, NotificationFrame notification)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(notification, ChatJsonContext.Wire.NotificationFrame);
        try
        {
            await bus.PublishAsync(room, RoomEntry.EncodeNotification(connection.Id, json));
        }
        catch (StoreUnavailableException ex)
        {
            ConnectionLog.NotificationFailed(logger, room, ex);   // best effort: notifications are not stored
        }
    }

    private static AckFrame JoinAck(JsonElement? id, string room, bool isUpdate, long? since, string? epoch, RoomHistory history)
    {
        if (!isUpdate)
        {
            return new AckFrame { Id = id, Ok = true, Room = room, Epoch = history.Epoch, Messages = Raw(history.Messages) };
        }

        if (since is not { } sinceSeq)
        {
            return new AckFrame { Id = id, Ok = true, Room = room, Epoch = history.Epoch };
        }

        var (messages, recovered) = history.Since(sinceSeq, epoch);
        return new AckFrame { Id = id, Ok = true, Room = room, Epoch = history.Epoch, Messages = Raw(messages), Recovered = recovered };
    }

    private static RawJson[] Raw(IReadOnlyList<RoomEntry> entries) => [.. entries.Select(e => new RawJson(e.Json))];

    private static byte[] Serialize(AckFrame ack) => JsonSerializer.SerializeToUtf8Bytes(ack, ChatJsonContext.Wire.AckFrame);
}
