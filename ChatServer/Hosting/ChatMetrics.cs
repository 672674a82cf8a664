using System.Diagnostics;
using System.Diagnostics.Metrics;
using ChatServer.Protocol;

namespace ChatServer.Hosting;

/// <summary>
/// The service's instruments, on one <see cref="Meter"/> named <see cref="MeterName"/> made by the host's
/// <see cref="IMeterFactory"/> (so two hosts in one test process keep apart). Every method is cheap when nothing
/// listens, and allocation-free when something does: tags are static strings, never built per call. The two counted
/// per frame (received, sent: one per delivery) keep their counts in plain fields, read by observable counters when
/// the metrics are collected, so a frame costs one increment instead of a tagged counter's lookup of its tag set.
/// </summary>
internal sealed class ChatMetrics
{
    public const string MeterName = "ChatServer";

    private readonly UpDownCounter<long> _openConnections;
    private readonly UpDownCounter<long> _roomsServed;
    // Process-wide: a server is one per process; test hosts sharing a process report the sum, as the exporter, which
    // merges same-named meters, showed for the tagged counters these replace.
    private static readonly TaggedCounts s_framesIn = new("type", [FrameTypes.SignIn, FrameTypes.UpdateSocketId, FrameTypes.SendMessage,
        FrameTypes.Members, FrameTypes.History, FrameTypes.Auth, FrameTypes.Typing, FrameTypes.Search, FrameTypes.DeleteMessage, Other]);
    private static readonly TaggedCounts s_framesOut = new("type", [FrameTypes.Message, FrameTypes.Ack, FrameTypes.Notification,
        FrameTypes.Gap, FrameTypes.Presence, FrameTypes.Typing, FrameTypes.Deleted, Other]);
    private readonly TaggedCounts _framesIn = s_framesIn;
    private readonly TaggedCounts _framesOut = s_framesOut;
    private readonly Counter<long> _framesRejected;
    private readonly Counter<long> _slowConsumerCloses;
    private readonly Histogram<double> _scriptDuration;
    private readonly Histogram<double> _messageLatency;
    private readonly Counter<long> _gapsRepaired;
    private readonly TimeProvider _time;

    public ChatMetrics(IMeterFactory meterFactory, TimeProvider time)
    {
        _time = time;
        var meter = meterFactory.Create(MeterName);
        _openConnections = meter.CreateUpDownCounter<long>("chat.connections.open", "{connection}",
            "WebSocket connections open on this instance.");
        _roomsServed = meter.CreateUpDownCounter<long>("chat.rooms.served", "{room}",
            "Rooms with at least one member on this instance (each one a Redis channel subscription).");
        meter.CreateObservableCounter("chat.frames.received", _framesIn.Observe, "{frame}",
            "Client frames parsed, by frame type (those then refused for their content included).");
        meter.CreateObservableCounter("chat.frames.sent", _framesOut.Observe, "{frame}",
            "Frames written to clients, by frame type.");
        _framesRejected = meter.CreateCounter<long>("chat.frames.rejected", "{frame}",
            "Client frames refused, by reason.");
        _slowConsumerCloses = meter.CreateCounter<long>("chat.connections.slow_consumer_closes", "{connection}",
            "Connections closed with 1008 because their outgoing queue was full.");
        _scriptDuration = meter.CreateHistogram("chat.redis.script.duration", "s",
            "Round trip of the Redis append script (number, store, trim, publish one message).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        _messageLatency = meter.CreateHistogram("chat.message.latency", "s",
            "From a message's stored ts (set by the instance that sent it) to its fan-out on this instance; ts has millisecond resolution.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _gapsRepaired = meter.CreateCounter<long>("chat.pubsub.gaps_repaired", "{gap}",
            "Pub/sub gaps found in a room's seq, filled from history (or reported with a gap frame where it was trimmed).");
    }

    public void ConnectionOpened() => _openConnections.Add(1);

    public void ConnectionClosed() => _openConnections.Add(-1);

    public void RoomSubscribed() => _roomsServed.Add(1);

    public void RoomUnsubscribed() => _roomsServed.Add(-1);

    /// <summary>Counts a client frame by its type (a <see cref="FrameTypes"/> name, else "other").</summary>
    public void FrameReceived(string type) => _framesIn.Add(type);

    /// <summary>Counts a frame by the type it starts with: every server frame begins <c>{"type":"…"</c>.</summary>
    public void FrameSent(ReadOnlySpan<byte> frame) => _framesOut.Add(TypeOf(frame));

    public void FrameRejected(string reason) => _framesRejected.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void SlowConsumerClosed() => _slowConsumerCloses.Add(1);

    public void ScriptCompleted(long startTimestamp) =>
        _scriptDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);

    /// <summary>Records how long ago a stored message was stamped, read from its <c>ts</c> field.</summary>
    public void MessageFannedOut(ReadOnlySpan<byte> messageJson)
    {
        if (!_messageLatency.Enabled)
        {
            return;
        }

        if (Protocol.MessageEncoding.TryReadTimestamp(messageJson, out var stored))
        {
            _messageLatency.Record(Math.Max(0, (_time.GetUtcNow().UtcDateTime - stored).TotalSeconds));
        }
    }

    /// <summary>A gap in a room's seq was found and read from history (what history no longer held became a gap frame).</summary>
    public void GapRepaired() => _gapsRepaired.Add(1);

    private static string TypeOf(ReadOnlySpan<byte> frame)
    {
        // Static strings: one tag value per type, no allocation per frame.
        ReadOnlySpan<byte> prefix = "{\"type\":\""u8;
        if (!frame.StartsWith(prefix))
        {
            return Other;
        }

        var rest = frame[prefix.Length..];
        return rest.StartsWith("message\""u8) ? FrameTypes.Message
            : rest.StartsWith("ack\""u8) ? FrameTypes.Ack
            : rest.StartsWith("notification\""u8) ? FrameTypes.Notification
            : rest.StartsWith("gap\""u8) ? FrameTypes.Gap
            : rest.StartsWith("presence\""u8) ? FrameTypes.Presence
            : rest.StartsWith("typing\""u8) ? FrameTypes.Typing
            : rest.StartsWith("deleted\""u8) ? FrameTypes.Deleted
            : Other;
    }

    private const string Other = "other";

    /// <summary>
    /// Counts per value of one tag, from a fixed list whose last value takes any other: an increment each, read (those
    /// above zero, each with its static tag) by an observable counter when the metrics are collected.
    /// </summary>
    private sealed class TaggedCounts(string tag, string[] values)
    {
        private readonly long[] _counts = new long[values.Length];
        private readonly KeyValuePair<string, object?>[][] _tags = [.. values.Select(v => new[] { new KeyValuePair<string, object?>(tag, v) })];

        /// <summary>Counts <paramref name="value"/> (a handful of short strings to compare: cheaper than a lookup).</summary>
        public void Add(string value)
        {
            var index = Array.IndexOf(values, value);
            Interlocked.Increment(ref _counts[index < 0 ? values.Length - 1 : index]);
        }

        public IEnumerable<Measurement<long>> Observe()
        {
            for (var i = 0; i < _counts.Length; i++)
            {
                if (Volatile.Read(ref _counts[i]) is var count and > 0)
                {
                    yield return new Measurement<long>(count, _tags[i]);
                }
            }
        }
    }
}
