namespace ChatServer.Connections;

/// <summary>
/// A token bucket per connection: <c>burst</c> frames at once, refilled at <c>perSecond</c>. Driven by
/// <see cref="TimeProvider"/> timestamps, so there is no timer per connection. Owned by the session; only its frames, which arrive one at a time, use it.
/// </summary>
internal sealed class SendRateLimiter(TimeProvider time, int perSecond, int burst)
{
    private double _tokens = burst;
    private long _last = time.GetTimestamp();

    public bool TryAcquire()
    {
        var now = time.GetTimestamp();
        var elapsed = time.GetElapsedTime(_last, now).TotalSeconds;
        _last = now;
        _tokens = Math.Min(burst, _tokens + (elapsed * perSecond));
        if (_tokens < 1)
        {
            return false;
        }

        _tokens -= 1;
        return true;
    }
}
