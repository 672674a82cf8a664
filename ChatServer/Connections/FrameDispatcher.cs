using System.Net.WebSockets;
using ChatServer.Hosting;
using ChatServer.Protocol;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>
/// Every client frame gets exactly one ack (PROTOCOL.md): rate limit, then JSON shape, then content rules, then the
/// session. A frame rejected at any step changes nothing.
/// </summary>
internal sealed class FrameDispatcher(FrameValidator validator, IOptions<ChatOptions> options, ChatMetrics metrics,
    ILogger<FrameDispatcher> logger)
{
    private readonly string _rateLimitError =
        $"Rate limit exceeded: at most {options.Value.RateLimitPerSecond} frames a second (bursts of {options.Value.RateLimitBurst}); the frame was dropped.";

    public async Task DispatchAsync(ChatSession session, WebSocketMessageType messageType, ReadOnlyMemory<byte> frame)
    {
        try
        {
            await DispatchCoreAsync(session, messageType, frame);
        }
        catch (Exception ex)   // a bug must not kill the connection or leave the frame unanswered
        {
            ConnectionLog.HandlerFailed(logger, session.Connection.Id, messageType.ToString(), ex);
            session.SendAck(AckFrame.Rejected(null, "The server failed to handle this frame; nothing was changed."));
        }
    }

    private async Task DispatchCoreAsync(ChatSession session, WebSocketMessageType messageType, ReadOnlyMemory<byte> frame)
    {
        if (!session.TryAcquireFrame())
        {
            // The frame's id when it parses, so a client can match the refusal to its request (PROTOCOL.md, limits).
            metrics.FrameRejected("rate_limit");
            var refusedId = messageType == WebSocketMessageType.Text ? FrameParser.Parse(frame).Id : null;
            session.SendAck(AckFrame.Rejected(refusedId, _rateLimitError));
            return;
        }

        if (messageType != WebSocketMessageType.Text)
        {
            metrics.FrameRejected("binary");
            session.SendAck(AckFrame.Rejected(null, "Binary frames are not accepted: send one JSON object per text frame."));
            return;
        }

        var parsed = FrameParser.Parse(frame);
        if (parsed.Error is { } error)
        {
            metrics.FrameRejected("malformed");
            session.SendAck(AckFrame.Rejected(parsed.Id, error));
            return;
        }

        // PROTOCOL.md "Authentication": auth frames, and no other frame before a valid token; user from the identity.
        if (session.Auth is { } auth)
        {
            if (await auth.ScreenAsync(parsed, session.SendAck, CancellationToken.None) is not { } screened)
            {
                return;
            }

            parsed = screened;
        }

        await HandleAsync(session, parsed);
    }

    private Task HandleAsync(ChatSession session, ParsedFrame parsed)
    {
        var id = parsed.Id;
        metrics.FrameReceived(parsed.Frame switch
        {
            SignInFrame => FrameTypes.SignIn,
            UpdateSocketIdFrame => FrameTypes.UpdateSocketId,
            SendMessageFrame => FrameTypes.SendMessage,
            MembersFrame => FrameTypes.Members,
            HistoryFrame => FrameTypes.History,
            TypingFrame => FrameTypes.Typing,
            SearchFrame => FrameTypes.Search,
            DeleteMessageFrame => FrameTypes.DeleteMessage,
            _ => "other",
        });
        switch (parsed.Frame)
        {
            case SignInFrame signIn:
                return ValidateUserAndRoom(signIn.User, signIn.Room, out var user, out var room) is { } signInError
                    ? Reject(session, parsed, signInError)
                    : session.SignInAsync(id, user, room);

            case UpdateSocketIdFrame update:
                return ValidateUserAndRoom(update.User, update.Room, out user, out room) is { } updateError
                    ? Reject(session, parsed, updateError)
                    : session.ResumeAsync(id, user, room, update.Since, update.Epoch);

            case MembersFrame:
                return session.MembersAsync(id);

            case HistoryFrame history:
                return session.HistoryAsync(id, history.Before, history.Limit ?? DefaultHistoryPage, history.Epoch);

            case SearchFrame search:
                return FrameValidator.ValidateQuery(search.Query) is { } queryError
                    ? Reject(session, parsed, queryError)
                    : session.SearchAsync(id, search.Query!, search.Limit ?? DefaultSearchPage, search.Before, search.Epoch);

            case DeleteMessageFrame delete:
                return session.DeleteMessageAsync(id, delete.Seq, delete.Epoch);

            case AuthFrame:
                return Reject(session, parsed, "Authentication is not enabled on this server: sign in with a user name.");

            case SendMessageFrame send:
                return (validator.ValidateText(send.Text) ?? FrameValidator.ValidateKey(send.Key)) is { } sendError
                    ? Reject(session, parsed, sendError)
                    : session.SendMessageAsync(id, send.Text!, send.Key);

            case TypingFrame:
                return session.TypingAsync(id);

            default:
                return Reject(session, parsed, "Unsupported frame.");
        }
    }

    /// <summary>Messages a <c>history</c> frame (or the server API's page) without <c>limit</c> returns.</summary>
    internal const int DefaultHistoryPage = 50;

    /// <summary>Messages a <c>search</c> frame (or the server API's search) without <c>limit</c> returns.</summary>
    internal const int DefaultSearchPage = 20;

    private string? ValidateUserAndRoom(string? user, string? room, out string trimmedUser, out string trimmedRoom)
    {
        trimmedRoom = "";
        return validator.ValidateUser(user, out trimmedUser) ?? validator.ValidateRoom(room, out trimmedRoom);
    }

    private Task Reject(ChatSession session, ParsedFrame parsed, string error)
    {
        metrics.FrameRejected("invalid");
        session.SendAck(AckFrame.Rejected(parsed.Id, error));
        return Task.CompletedTask;
    }
}
