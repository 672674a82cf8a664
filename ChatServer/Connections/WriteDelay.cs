using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>
/// The write-delay window (<see cref="ChatOptions.WriteDelay"/>, Centrifugo's <c>write_delay</c>): a connection that
/// sent less than a window ago waits for the next tick before it writes again, so under load a member's frames of
/// several messages go out in one write instead of one each; a connection that has been quiet writes at once. One
/// timer for the whole instance, armed only while someone waits: every waiting connection resumes on its tick, one
/// after the other on that thread, so the sends of a busy instance are also batched per wake-up.
/// </summary>
internal sealed class WriteDelay : IDisposable
{
    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private readonly TimeProvider _time;
    private TaskCompletionSource _tick = new();   // continuations run on the timer's thread: each one only writes
    private bool _armed;
    private long _writes;
    private long _held;

    public WriteDelay(IOptions<ChatOptions> options, TimeProvider time)
    {
        Window = options.Value.WriteDelay;
        _time = time;
        _timer = time.CreateTimer(_ => Tick(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Zero: every connection writes as soon as it has something to write.</summary>
    public TimeSpan Window { get; }

    /// <summary>How many times connections wrote what they had queued, and how many of those waited for a tick first.</summary>
    public (long Writes, long Held) Counts => (Volatile.Read(ref _writes), Volatile.Read(ref _held));

    /// <summary>Whether a connection whose last write was at <paramref name="lastWrite"/> (from <see cref="Writing"/>) waits for the tick.</summary>
    public bool Holds(long lastWrite) => Window > TimeSpan.Zero && _time.GetElapsedTime(lastWrite) < Window;

    /// <summary>A connection is about to write what it has queued: counted, and the time of it returned.</summary>
    public long Writing()
    {
        Interlocked.Increment(ref _writes);
        return _time.GetTimestamp();
    }

    /// <summary>Completes on the next tick, at most one window from now.</summary>
    public Task NextTick
    {
        get
        {
            Interlocked.Increment(ref _held);
            lock (_gate)
            {
                if (!_armed)
                {
                    _armed = true;
                    _timer.Change(Window, Timeout.InfiniteTimeSpan);
                }

                return _tick.Task;
            }
        }
    }

    private void Tick()
    {
        TaskCompletionSource due;
        lock (_gate)
        {
            (due, _tick, _armed) = (_tick, new TaskCompletionSource(), false);
        }

        due.SetResult();
    }

    public void Dispose() => _timer.Dispose();
}
