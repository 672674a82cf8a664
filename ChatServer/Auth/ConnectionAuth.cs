using System.Globalization;
using System.Net.WebSockets;
using ChatServer.Connections;
using ChatServer.Hosting;
using ChatServer.Protocol;

namespace ChatServer.Auth;

/// <summary>
/// The identity of one connection while authentication is on (PROTOCOL.md, "Authentication"): set by a token on the
/// upgrade or by <c>auth</c> frames, extended by later ones, and closing the connection with 4001 when it expires.
/// Frames reach it one at a time (the receive loop); only the expiry timer runs beside them, and it only closes.
/// </summary>
internal sealed class ConnectionAuth : IDisposable
{
    /// <summary>PROTOCOL.md: the 5th failed <c>auth</c> on one connection closes it with 1008.</summary>
    public const int MaxFailures = 5;

    // An ITimer's due time must stay under about 49 days; a later expiry is reached in steps.
    private static readonly TimeSpan s_longestWait = TimeSpan.FromDays(30);

    private readonly TokenValidator _validator;
    private readonly ChatConnection _connection;
    private readonly TimeProvider _time;
    private readonly ChatMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ITimer _expiry;
    private AuthIdentity? _identity;
    private long _expiresAtTicks = long.MaxValue;
    private int _failures;

    public ConnectionAuth(TokenValidator validator, ChatConnection connection, AuthIdentity? identity, TimeProvider time,
        ChatMetrics metrics, ILogger logger)
    {
        _validator = validator;
        _connection = connection;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        _expiry = time.CreateTimer(_ => OnExpiryTimer(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (identity is not null)
        {
            Accept(identity);
        }
    }

    /// <summary>
    /// Handles <c>auth</c> frames and screens every other frame: refused before a valid token, <c>user</c> taken from
    /// the identity, rooms held to the rooms claim. Returns the frame to handle next (with <c>user</c> filled in), or
    /// <c>null</c> when it has been answered here.
    /// </summary>
    public async Task<ParsedFrame?> ScreenAsync(ParsedFrame parsed, Action<AckFrame> sendAck, CancellationToken cancellationToken)
    {
        if (parsed.Frame is AuthFrame auth)
        {
            sendAck(await AuthenticateAsync(parsed.Id, auth.Token, cancellationToken));
            return null;
        }

        if (_identity is not { } identity || identity.ExpiresAt <= _time.GetUtcNow())
        {
            return Refuse(parsed, "unauthenticated",
                "Authentication required: send {\"type\":\"auth\",\"token\":…} with a valid token first.", sendAck);
        }

        return parsed.Frame switch
        {
            SignInFrame signIn => Screen(parsed, identity, signIn.User, signIn.Room, sendAck) is { } user
                ? parsed with { Frame = signIn with { User = user } }
                : null,
            UpdateSocketIdFrame update => Screen(parsed, identity, update.User, update.Room, sendAck) is { } user
                ? parsed with { Frame = update with { User = user } }
                : null,
            _ => parsed,
        };
    }

    public void Dispose() => _expiry.Dispose();

    private async Task<AckFrame> AuthenticateAsync(System.Text.Json.JsonElement? id, string? token, CancellationToken cancellationToken)
    {
        var check = string.IsNullOrWhiteSpace(token)
            ? TokenCheck.Failed("malformed", "Field 'token' is required and must be a string holding a JWT.")
            : await _validator.ValidateAsync(token, cancellationToken);
        if (check.Identity is { } identity && _identity is { } current && current.User != identity.User)
        {
            check = TokenCheck.Failed("user", $"Authentication failed: the token is for another user than '{current.User}', whom this connection speaks as.");
        }

        if (check.Identity is not { } accepted)
        {
            _metrics.FrameRejected("auth_" + check.Reason);
            if (++_failures >= MaxFailures)
            {
                AuthLog.TooManyFailures(_logger, _connection.Id, _failures);
                _connection.RequestClose(WebSocketCloseStatus.PolicyViolation, "Too many failed auth frames.");
            }

            return AckFrame.Rejected(id, check.Error);
        }

        Accept(accepted);
        return new AckFrame
        {
            Id = id, Ok = true, User = accepted.User,
            ExpiresAt = accepted.ExpiresAt.UtcDateTime.ToString(MessageEncoding.TimestampFormat, CultureInfo.InvariantCulture),
        };
    }

    private void Accept(AuthIdentity identity)
    {
        _identity = identity;
        Volatile.Write(ref _expiresAtTicks, identity.ExpiresAt.UtcTicks);
        Arm();
    }

    /// <summary>Returns the user to act as, or <c>null</c> after acking the refusal.</summary>
    private string? Screen(ParsedFrame parsed, AuthIdentity identity, string? user, string? room, Action<AckFrame> sendAck)
    {
        if (user is not null && user.Trim() != identity.User)
        {
            Refuse(parsed, "user", $"Field 'user' must be omitted or be your signed-in name '{identity.User}'.", sendAck);
            return null;
        }

        if (room is not null && !identity.MayJoin(room.Trim()))
        {
            Refuse(parsed, "room", $"Room '{room.Trim()}' is not allowed for your identity (its token's rooms claim).", sendAck);
            return null;
        }

        return identity.User;
    }

    private ParsedFrame? Refuse(ParsedFrame parsed, string reason, string error, Action<AckFrame> sendAck)
    {
        _metrics.FrameRejected("auth_" + reason);
        sendAck(AckFrame.Rejected(parsed.Id, error));
        return null;
    }

    private void Arm()
    {
        var remaining = new DateTimeOffset(Volatile.Read(ref _expiresAtTicks), TimeSpan.Zero) - _time.GetUtcNow();
        _expiry.Change(remaining <= TimeSpan.Zero ? TimeSpan.Zero : remaining < s_longestWait ? remaining : s_longestWait,
            Timeout.InfiniteTimeSpan);
    }

    private void OnExpiryTimer()
    {
        if (_time.GetUtcNow().UtcTicks < Volatile.Read(ref _expiresAtTicks))
        {
            Arm();   // extended by a fresh auth meanwhile, or a long wait taken in steps
            return;
        }

        AuthLog.Expired(_logger, _connection.Id);
        _connection.RequestClose(ChatConnection.TokenExpired, "token expired");   // the session leaves its room: leave notification
    }
}
