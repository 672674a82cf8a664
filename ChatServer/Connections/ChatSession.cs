using System.Text.Json;
using ChatServer.History;
using ChatServer.Moderation;
using ChatServer.Protocol;
using ChatServer.Rooms;

namespace ChatServer.Connections;

/// <summary>
/// What one connection is in the chat: its user and room. Frames reach it one at a time from the receive loop; the
/// close path may run beside them, so both take <see cref="_gate"/> (it is held across awaits on the store).
/// A frame that fails changes nothing: a move to another room leaves the old room only once the new one is joined.
/// Waits end when the request is aborted or the application stops; the close path always runs to the end.
/// </summary>
internal sealed class ChatSession : IDisposable
{
    private const string ClosingError = "The connection is closing; nothing was changed.";

    private readonly ChatConnection _connection;
    private readonly SendRateLimiter _rateLimiter;
    private readonly RoomRegistry _registry;
    private readonly IMessageLog _log;
    private readonly IRoomChannel _channel;
    private readonly PresenceTracker _presence;
    private readonly HistoryReader _history;
    private readonly MessageDeleter _deleter;
    private readonly MessagePoster _poster;
    private readonly IBanStore _bans;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationToken _requestAborted;
    private readonly CancellationToken _applicationStopping;
    private RoomMember? _member;
    private string _user = "";
    private bool _counted;   // presence counts this connection as _user in _member's room
    private bool _closed;
    private long _lastTyping;   // when this connection's last forwarded typing was sent (a TimeProvider timestamp); under _gate

    public ChatSession(ChatConnection connection, SendRateLimiter rateLimiter, RoomRegistry registry, IMessageLog log, IRoomChannel channel,
        PresenceTracker presence, RoomHistory history, IBanStore bans, TimeProvider time, ILogger logger, CancellationToken requestAborted,
        CancellationToken applicationStopping)
    {
        (_connection, _rateLimiter, _registry, _log, _channel, _presence, _time, _logger) =
            (connection, rateLimiter, registry, log, channel, presence, time, logger);
        (_history, _deleter, _poster, _bans) = (history.Reader, history.Deleter, history.Poster, bans);
        // Linked per frame, not per connection (Link): an idle signed-in socket holds no registration on either token.
        (_requestAborted, _applicationStopping) = (requestAborted, applicationStopping);
    }

    public ChatConnection Connection => _connection;

    /// <summary>Takes one frame's token from this session's bucket (PROTOCOL.md, limits); false: refuse the frame.</summary>
    public bool TryAcquireFrame() => _rateLimiter.TryAcquire();

    /// <summary>The connection's identity while authentication is on (PROTOCOL.md, "Authentication"); else <c>null</c>.</summary>
    public Auth.ConnectionAuth? Auth { get; set; }

    /// <summary><c>signin</c>: joins with the whole history and announces the user.</summary>
    public Task SignInAsync(JsonElement? id, string user, string room) => JoinAsync(id, user, room, JoinRequest.SignIn);

    /// <summary><c>updateSocketId</c>: joins silently, with what came after <paramref name="since"/> when given.</summary>
    public Task ResumeAsync(JsonElement? id, string user, string room, long? since, string? epoch) =>
        JoinAsync(id, user, room, JoinRequest.Resume(since, epoch));

    /// <summary>Extension <c>members</c>: each user in the connection's room once, across instances.</summary>
    public Task MembersAsync(JsonElement? id) => InRoomAsync(id, async (member, _) =>
    {
        var members = await _presence.MembersAsync(member.Room);
        return new AckFrame { Id = id, Ok = true, Room = member.Room, Members = members };
    });

    /// <summary>
    /// <c>history</c>: up to <paramref name="limit"/> messages older than (<paramref name="epoch"/>,
    /// <paramref name="before"/>), oldest first, across epochs and on into the history database when there is one.
    /// </summary>
    public Task HistoryAsync(JsonElement? id, long? before, int limit, string? epoch) => InRoomAsync(id, async (member, cancellationToken) =>
    {
        try
        {
            var page = await _history.PageAsync(member.Room, epoch, before, limit, cancellationToken);
            return new AckFrame { Id = id, Ok = true, Room = member.Room, Epoch = page.Epoch, Messages = page.Messages, More = page.More };
        }
        catch (HistoryUnavailableException)
        {
            return AckFrame.Rejected(id, HistoryReader.DatabaseUnavailableError);
        }
    });

    /// <summary><c>search</c> (protocol 1.2): the room's messages matching <paramref name="query"/>, newest first; needs the history database.</summary>
    public Task SearchAsync(JsonElement? id, string query, int limit, long? before, string? epoch) => InRoomAsync(id, async (member, cancellationToken) =>
    {
        if (!_history.HasDatabase)
        {
            return AckFrame.Rejected(id, HistoryReader.SearchNeedsDatabaseError);
        }

        try
        {
            var found = await _history.SearchAsync(member.Room, query, epoch, before, limit, cancellationToken);
            return new AckFrame { Id = id, Ok = true, Room = member.Room, Messages = found.Messages, More = found.More };
        }
        catch (HistoryUnavailableException)
        {
            return AckFrame.Rejected(id, HistoryReader.SearchUnavailableError);
        }
    });

    /// <summary><c>deleteMessage</c> (protocol 1.2): the author's own message of the current room becomes a tombstone everywhere.</summary>
    public Task DeleteMessageAsync(JsonElement? id, long seq, string epoch) => InRoomAsync(id, async (member, cancellationToken) =>
    {
        DeleteOutcome outcome;
        try
        {
            outcome = await _deleter.DeleteAsync(member.Room, epoch, seq, author: _user, DeletedBy.Author, cancellationToken);
        }
        catch (HistoryUnavailableException)
        {
            return AckFrame.Rejected(id, HistoryReader.DeleteUnavailableError);
        }

        return outcome switch
        {
            DeleteOutcome.Deleted or DeleteOutcome.AlreadyDeleted => new AckFrame { Id = id, Ok = true },
            DeleteOutcome.NotAuthor => AckFrame.Rejected(id, "You can delete only your own messages."),
            _ => AckFrame.Rejected(id, FrameValidator.NotInHistoryError(seq, epoch)),
        };
    });

    /// <summary><c>sendMessage</c>; with <paramref name="key"/> (protocol 1.2) a resend of a stored message stores nothing.</summary>
    public Task SendMessageAsync(JsonElement? id, string text, string? key) => InRoomAsync(id, async (member, _) =>
    {
        ConnectionLog.MessageText(_logger, _connection.Id, FrameTypes.SendMessage, _user, member.Room, text);
        try
        {
            var posted = await _poster.PostAsync(member.Room, _user, text, key);   // not cancelled: once sent, it is stored or not
            return new AckFrame { Id = id, Ok = true, Seq = posted.Seq, Duplicate = posted.Duplicate ? true : null };
        }
        catch (StoreUnavailableException ex) when (ex.OutcomeUnknown && key is not null)
        {
            return AckFrame.Rejected(id, StoreUnavailableException.UnknownOutcomeWithKeyError);
        }
    }, cancellable: false);

    /// <summary>
    /// <c>typing</c> (protocol 1.2): tells the room's other members, on every instance, through the room's channel; at
    /// most one per <see cref="TypingInterval"/>, later ones are acked and dropped. Not stored, so it waits on no message.
    /// </summary>
    public Task TypingAsync(JsonElement? id) => InRoomAsync(id, async (member, _) =>
    {
        var now = _time.GetTimestamp();
        if (_lastTyping != 0 && _time.GetElapsedTime(_lastTyping, now) < TypingInterval)
        {
            return new AckFrame { Id = id, Ok = true };
        }

        _lastTyping = now;
        var json = JsonSerializer.SerializeToUtf8Bytes(new TypingNotice { Room = member.Room, User = _user }, ChatJsonContext.Wire.TypingNotice);
        await _channel.PublishAsync(member.Room, RoomEntry.EncodeNotification(_connection.Id, json));
        return new AckFrame { Id = id, Ok = true };
    }, cancellable: false);

    /// <summary>The most often one connection's <c>typing</c> reaches the room (PROTOCOL.md, "Typing").</summary>
    public static readonly TimeSpan TypingInterval = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Leaves the room with a leave notification; later frames are ignored. Delivery stops before the first await, even
    /// while a frame in flight still holds the gate. Safe to call more than once.
    /// </summary>
    public async Task CloseAsync()
    {
        Volatile.Read(ref _member)?.MarkLeft();
        await _gate.WaitAsync(CancellationToken.None);
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

    public void Dispose()
    {
        _gate.Dispose();
    }

    public void SendAck(AckFrame ack) => _connection.TryEnqueue(Serialize(ack));

    /// <summary>A token that fires when the connection is aborted or the application stops, for one frame's waits.</summary>
    private CancellationTokenSource Link() => CancellationTokenSource.CreateLinkedTokenSource(_requestAborted, _applicationStopping);

    private async Task JoinAsync(JsonElement? id, string user, string room, JoinRequest request)
    {
        using var cancellation = Link();
        var cancellationToken = cancellation.Token;
        await RunGatedAsync(id, async () =>
        {
            if (await _bans.FindAsync(room, user) is { } ban)
            {
                SendAck(AckFrame.Rejected(id, ban.Sentence(room)));   // API.md, bans: refused on every instance until it ends
                return;
            }

            var current = _member;
            var announce = request is SignInJoin;
            if (current is not null && current.Room == room)
            {
                await RejoinAsync(current, id, user, request, cancellationToken);
                return;
            }

            var member = new RoomMember(_connection, room) { User = user };
            await _registry.JoinAsync(member, request, slice =>
            {
                current?.MarkLeft();   // the read succeeded: from the ack on, only the new room reaches this connection
                return Serialize(JoinAck(id, room, request, slice));
            }, cancellationToken);

            if (current is not null)
            {
                await LeaveAsync(current, announce);
            }

            (_member, _user) = (member, user);
            if (announce)
            {
                await PublishNotificationAsync(room, NotificationFrame.Joined(room, user));
            }

            _counted = await _presence.JoinedAsync(room, user, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>Signing in again to the room the connection is in: fresh history, no announcement (PROTOCOL.md).</summary>
    private async Task RejoinAsync(RoomMember member, JsonElement? id, string user, JoinRequest request, CancellationToken cancellationToken)
    {
        await _registry.JoinAsync(member, request, slice => Serialize(JoinAck(id, member.Room, request, slice)), cancellationToken);
        if (_user != user)
        {
            if (_counted)
            {
                await _presence.LeftAsync(member.Room, _user);
            }

            (_user, member.User) = (user, user);
            _counted = await _presence.JoinedAsync(member.Room, user, cancellationToken);
        }
    }

    /// <summary>
    /// Runs a frame that needs a room under the gate, and acks it: with <paramref name="action"/>'s ack, with
    /// "User session not found." before sign-in, or with the store-unavailable error. Nothing after a close. An action
    /// that waits on nothing cancellable (<paramref name="cancellable"/> false) and finds the gate free runs without a
    /// token: a linked token source and its registrations per message are measurable on the hot path.
    /// </summary>
    private async Task InRoomAsync(JsonElement? id, Func<RoomMember, CancellationToken, Task<AckFrame>> action, bool cancellable = true)
    {
        if (!cancellable && _gate.Wait(0))
        {
            await RunHeldAsync(id, () => InRoomCoreAsync(id, action, CancellationToken.None), CancellationToken.None);
            return;
        }

        using var cancellation = Link();
        var cancellationToken = cancellation.Token;
        await RunGatedAsync(id, () => InRoomCoreAsync(id, action, cancellationToken), cancellationToken);
    }

    private async Task InRoomCoreAsync(JsonElement? id, Func<RoomMember, CancellationToken, Task<AckFrame>> action, CancellationToken cancellationToken)
    {
        if (_member is not { } member)
        {
            SendAck(AckFrame.Rejected(id, "User session not found."));
            return;
        }

        SendAck(await action(member, cancellationToken));
    }

    /// <summary>Runs a frame's work under the gate (nothing after a close); a store outage or a closing connection is its ack.</summary>
    private async Task RunGatedAsync(JsonElement? id, Func<Task> work, CancellationToken cancellationToken)
    {
        try
        {
            await _gate.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            SendAck(AckFrame.Rejected(id, ClosingError));
            return;
        }

        await RunHeldAsync(id, work, cancellationToken);
    }

    /// <summary><see cref="RunGatedAsync"/> once the gate is held: runs the work, then releases the gate.</summary>
    private async Task RunHeldAsync(JsonElement? id, Func<Task> work, CancellationToken cancellationToken)
    {
        try
        {
            if (!_closed)
            {
                await work();
            }
        }
        catch (StoreUnavailableException ex)
        {
            SendAck(AckFrame.Rejected(id, ex.ClientMessage));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            SendAck(AckFrame.Rejected(id, ClosingError));
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task LeaveAsync(RoomMember member, bool announce)
    {
        await _registry.LeaveAsync(member);
        if (_counted)
        {
            _counted = false;
            await _presence.LeftAsync(member.Room, _user);
        }

        if (announce)
        {
            await PublishNotificationAsync(member.Room, NotificationFrame.Left(member.Room, _user));
        }
    }

    private async Task PublishNotificationAsync(string room, NotificationFrame notification)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(notification, ChatJsonContext.Wire.NotificationFrame);
        try
        {
            await _channel.PublishAsync(room, RoomEntry.EncodeNotification(_connection.Id, json));
        }
        catch (StoreUnavailableException ex)
        {
            ConnectionLog.NotificationFailed(_logger, room, ex);   // best effort: notifications are not stored
        }
    }

    private static AckFrame JoinAck(JsonElement? id, string room, JoinRequest request, LogSlice log)
    {
        if (request is not ResumeJoin resume)
        {
            return new AckFrame { Id = id, Ok = true, Room = room, Epoch = log.Epoch, Messages = Raw(log.Messages) };
        }

        if (resume.Since is null)
        {
            return new AckFrame { Id = id, Ok = true, Room = room, Epoch = log.Epoch };
        }

        var (messages, recovered) = resume.Recover(log);
        return new AckFrame { Id = id, Ok = true, Room = room, Epoch = log.Epoch, Messages = Raw(messages), Recovered = recovered };
    }

    private static RawJson[] Raw(IReadOnlyList<RoomEntry> entries) => [.. entries.Select(e => new RawJson(e.Json))];

    private static byte[] Serialize(AckFrame ack) => JsonSerializer.SerializeToUtf8Bytes(ack, ChatJsonContext.Wire.AckFrame);
}
