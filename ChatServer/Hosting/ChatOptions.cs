using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace ChatServer.Hosting;

/// <summary>
/// Every limit of PROTOCOL.md, with its default. Bound from section <c>Chat</c> (appsettings, or environment variables
/// such as <c>Chat__HistoryLength=500</c>) and validated at start-up.
/// </summary>
public sealed class ChatOptions
{
    public const string Section = "Chat";

    /// <summary>Messages kept per room; older ones are trimmed.</summary>
    [Range(1, 10_000)] public int HistoryLength { get; set; } = 100;

    /// <summary>
    /// How long an idle room's history, <c>seq</c> counter and <c>epoch</c> are kept after its last stored message or
    /// last join (PROTOCOL.md "Retention"); then they expire together and the room starts over with a new epoch.
    /// <see cref="TimeSpan.Zero"/> keeps rooms forever. Redis keys carry it as their expiry; the in-process log too.
    /// </summary>
    public TimeSpan HistoryTtl { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Rooms the in-process log (no Redis) keeps at most: beyond it, the least recently used rooms are dropped first
    /// (their history and epoch, as if they had expired), so signing in to ever new names cannot grow the process.
    /// </summary>
    [Range(1, 10_000_000)] public int MaxInProcessRooms { get; set; } = 10_000;

    /// <summary>
    /// How long a room remembers a <c>sendMessage</c> key (protocol 1.2): a resend with the same key within it stores
    /// nothing and gets the first one's <c>seq</c>. Range 1 s to 1 day.
    /// </summary>
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Keys a room remembers at most within the window; beyond it the oldest are forgotten first (bounded memory).</summary>
    [Range(1, 1_000_000)] public int IdempotencyKeysPerRoom { get; set; } = 10_000;

    /// <summary>Largest accepted frame; a larger one closes the connection with 1009.</summary>
    [Range(1_024, 1_048_576)] public int MaxFrameBytes { get; set; } = 16 * 1024;

    /// <summary>Frames queued for one connection before it counts as not reading and is closed with 1008.</summary>
    [Range(8, 65_536)] public int OutgoingQueueCapacity { get; set; } = 256;

    [Range(1, 1_000)] public int MaxUserLength { get; set; } = 32;
    [Range(1, 1_000)] public int MaxRoomLength { get; set; } = 64;
    [Range(1, 100_000)] public int MaxTextLength { get; set; } = 2_000;

    /// <summary>Sustained frames per second per connection (token bucket refill rate).</summary>
    [Range(1, 1_000_000)] public int RateLimitPerSecond { get; set; } = 20;

    /// <summary>Frames a connection may send at once before the sustained rate applies.</summary>
    [Range(1, 1_000_000)] public int RateLimitBurst { get; set; } = 40;

    /// <summary>Open WebSocket connections per instance; further upgrades get 503.</summary>
    [Range(1, 1_000_000)] public int MaxConnections { get; set; } = 20_000;

    /// <summary>Interval of keep-alive pings; a peer that does not answer within the same time is dropped.</summary>
    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How long an instance's presence entries live without a refresh (refreshed every third of it): an instance that
    /// dies drops out of every room within this plus one refresh interval, and its users are announced as gone.
    /// </summary>
    public TimeSpan PresenceTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How soon a room retries reading a range of history it could not read (while later messages wait, in order),
    /// unless the next message triggers the retry first.
    /// </summary>
    public TimeSpan RepairRetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The write-delay window: a connection that wrote less than this long ago waits up to this long before it writes
    /// again, so under load its frames go out together (fewer writes per delivery, for at most this much latency); a
    /// connection that has been quiet writes at once. <see cref="TimeSpan.Zero"/>: every frame goes out at once.
    /// </summary>
    public TimeSpan WriteDelay { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>How long a close handshake may take before the socket is aborted.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Origins (<c>scheme://host[:port]</c>) allowed to open a WebSocket besides the service's own origin, which is
    /// always allowed. <c>*</c> allows every origin.
    /// </summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>Whether upgrades without an <c>Origin</c> header (wscat, other non-browser clients) are accepted.</summary>
    public bool AllowRequestsWithoutOrigin { get; set; } = true;
}

[OptionsValidator]
public sealed partial class ChatOptionsValidator : IValidateOptions<ChatOptions>;
