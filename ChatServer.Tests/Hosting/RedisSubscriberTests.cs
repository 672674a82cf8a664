using System.Collections.Concurrent;
using System.Text;
using ChatServer.Hosting;
using ChatServer.Rooms;
using ChatServer.Tests.Faults;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace ChatServer.Tests.Hosting;

/// <summary>The server's own pub/sub connection against a real <c>redis-server</c>.</summary>
[TestFixture]
public sealed class RedisSubscriberTests
{
    [Test, CancelAfter(30_000)]
    public async Task Messages_reach_their_channel_in_order_and_stop_after_unsubscribe(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var publisher = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        using var subscriber = await StartAsync(redis, cancellationToken);
        var first = new BlockingCollection<string>();
        var other = new BlockingCollection<string>();
        var subscription = await subscriber.SubscribeAsync("room:a", m => first.Add(Encoding.UTF8.GetString(m.Span)), cancellationToken);
        await using var _ = await subscriber.SubscribeAsync("room:ü", m => other.Add(Encoding.UTF8.GetString(m.Span)), cancellationToken);

        var big = new string('x', 100_000);   // larger than the receive buffer
        for (var i = 0; i < 200; i++)
        {
            await publisher.GetSubscriber().PublishAsync(RedisChannel.Literal("room:a"), i == 100 ? big : $"a{i}");
        }

        await publisher.GetSubscriber().PublishAsync(RedisChannel.Literal("room:ü"), "ü");
        var received = Enumerable.Range(0, 200).Select(_ => first.Take(cancellationToken)).ToList();
        Assert.That(received, Is.EqualTo(Enumerable.Range(0, 200).Select(i => i == 100 ? big : $"a{i}")));
        Assert.That(other.Take(cancellationToken), Is.EqualTo("ü"));

        await subscription.DisposeAsync();
        await FaultHelpers.WaitUntilAsync(async () =>
            (long)await publisher.GetSubscriber().PublishAsync(RedisChannel.Literal("room:a"), "late") == 0, cancellationToken);
        await publisher.GetSubscriber().PublishAsync(RedisChannel.Literal("room:ü"), "after");
        Assert.That(other.Take(cancellationToken), Is.EqualTo("after"));
        Assert.That(first, Is.Empty, "nothing after the unsubscribe");
    }

    [Test, CancelAfter(30_000)]
    public async Task A_killed_connection_comes_back_subscribed_and_says_so(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await using var publisher = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        using var subscriber = await StartAsync(redis, cancellationToken);
        var restored = 0;
        subscriber.Restored += () => Interlocked.Increment(ref restored);
        var messages = new BlockingCollection<string>();
        await using var _ = await subscriber.SubscribeAsync("room:a", m => messages.Add(Encoding.UTF8.GetString(m.Span)), cancellationToken);

        for (var round = 1; round <= 5; round++)
        {
            Assert.That(await FaultHelpers.KillSubscribersAsync(redis.ConnectionString), Is.GreaterThan(0), $"round {round}: subscribed");
            await FaultHelpers.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref restored) == round), cancellationToken);
            await FaultHelpers.WaitUntilAsync(async () =>
                (long)await publisher.GetSubscriber().PublishAsync(RedisChannel.Literal("room:a"), $"r{round}") == 1, cancellationToken);
            Assert.That(messages.Take(cancellationToken), Is.EqualTo($"r{round}"));
        }
    }

    [Test, CancelAfter(30_000)]
    public async Task While_Redis_is_down_subscribing_fails_fast_and_a_started_Redis_is_found(CancellationToken cancellationToken)
    {
        var port = RedisServerProcess.FreePort();
        using var subscriber = RedisSubscriber.Start(ConfigurationOptions.Parse($"127.0.0.1:{port}"), NullLogger.Instance);
        Assert.ThrowsAsync<StoreUnavailableException>(() => subscriber.SubscribeAsync("room:a", _ => { }, cancellationToken));

        using var redis = await RedisServerProcess.StartAsync(port);
        await FaultHelpers.WaitUntilAsync(() => Task.FromResult(subscriber.IsConnected), cancellationToken);
        var messages = new BlockingCollection<string>();
        await using var _ = await subscriber.SubscribeAsync("room:a", m => messages.Add(Encoding.UTF8.GetString(m.Span)), cancellationToken);
        await using var publisher = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        await publisher.GetSubscriber().PublishAsync(RedisChannel.Literal("room:a"), "hello");
        Assert.That(messages.Take(cancellationToken), Is.EqualTo("hello"));
    }

    private static async Task<RedisSubscriber> StartAsync(RedisServerProcess redis, CancellationToken cancellationToken)
    {
        var subscriber = RedisSubscriber.Start(ConfigurationOptions.Parse(redis.ConnectionString), NullLogger.Instance);
        await FaultHelpers.WaitUntilAsync(() => Task.FromResult(subscriber.IsConnected), cancellationToken);
        return subscriber;
    }
}
