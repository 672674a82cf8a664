using ChatServer.Connections;

namespace ChatServer.Tests.Protocol;

public sealed class SendRateLimiterTests
{
    private sealed class ManualTime : TimeProvider
    {
        public long Ticks { get; set; }
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Ticks;
    }

    [Test]
    public void A_burst_passes_then_the_rate_refills()
    {
        var time = new ManualTime();
        var limiter = new SendRateLimiter(time, perSecond: 20, burst: 40);

        Assert.That(Enumerable.Range(0, 40).All(_ => limiter.TryAcquire()), Is.True);
        Assert.That(limiter.TryAcquire(), Is.False);

        time.Ticks += TimeSpan.FromMilliseconds(100).Ticks;   // 0.1 s at 20/s: two frames
        Assert.That(limiter.TryAcquire(), Is.True);
        Assert.That(limiter.TryAcquire(), Is.True);
        Assert.That(limiter.TryAcquire(), Is.False);

        time.Ticks += TimeSpan.FromHours(1).Ticks;             // refill never exceeds the burst
        Assert.That(Enumerable.Range(0, 41).Count(_ => limiter.TryAcquire()), Is.EqualTo(40));
    }
}
