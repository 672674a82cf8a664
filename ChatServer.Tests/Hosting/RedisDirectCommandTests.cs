using ChatServer.Hosting;
using ChatServer.Rooms;
using ChatServer.Tests.Faults;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace ChatServer.Tests.Hosting;

/// <summary>Commands on the server's own Redis connection (RESP3, beside its subscriptions) against a real <c>redis-server</c>.</summary>
[TestFixture]
public sealed class RedisDirectCommandTests
{
    [Test, CancelAfter(30_000)]
    public async Task Pipelined_commands_get_their_own_replies_in_order_and_errors_come_back_as_errors(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        using var connection = await StartAsync(redis.ConnectionString, cancellationToken);

        var replies = Enumerable.Range(0, 500).Select(i => i % 50 == 49
            ? connection.ExecuteAsync(new RespCommand("HINCRBY").Add("counter").Add("n").Add("not a number"))
            : connection.ExecuteAsync(new RespCommand("INCR").Add("counter"))).ToList();
        await Task.WhenAll(replies);

        var expected = 0L;
        for (var i = 0; i < replies.Count; i++)
        {
            var reply = await replies[i];
            if (i % 50 == 49)
            {
                Assert.That(reply.IsError, Is.True, $"reply {i}: {reply}");   // WRONGTYPE: "counter" is a string
            }
            else
            {
                Assert.That(reply is { Type: ':' } && reply.Integer == ++expected, Is.True, $"reply {i}: {reply}");
            }
        }

        var echo = await connection.ExecuteAsync(new RespCommand("ECHO").Add("ü\r\n"u8.ToArray()));
        Assert.That(echo.Text, Is.EqualTo("ü\r\n"));
    }

    [Test, CancelAfter(30_000)]
    public async Task Pushes_between_replies_reach_their_channel_and_replies_their_commands(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        using var connection = await StartAsync(redis.ConnectionString, cancellationToken);
        var received = new System.Collections.Concurrent.BlockingCollection<string>();
        await using var _ = await connection.SubscribeAsync("room:a", m => received.Add(System.Text.Encoding.UTF8.GetString(m.Span)), cancellationToken);

        // Published on the very connection that is subscribed: each reply and its push share the socket.
        var replies = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            connection.ExecuteAsync(new RespCommand("PUBLISH").Add("room:a").Add($"m{i}"))));

        Assert.That(replies.Select(r => (r.Type, r.Integer)), Is.All.EqualTo((':', 1L)), "each PUBLISH reached one subscriber");
        Assert.That(Enumerable.Range(0, 200).Select(_ => received.Take(cancellationToken)), Is.EqualTo(Enumerable.Range(0, 200).Select(i => $"m{i}")));
        var hello = await connection.ExecuteAsync(new RespCommand("HELLO"));
        Assert.That(hello.Items!.Select(i => i.Text).ToList(), Does.Contain("proto"), hello.ToString());
    }

    [Test, CancelAfter(30_000)]
    public async Task A_killed_connection_fails_what_waits_and_comes_back(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        using var connection = await StartAsync(redis.ConnectionString, cancellationToken);

        var blocked = connection.ExecuteAsync(new RespCommand("BLPOP").Add("nothing").Add(0));   // waits until the kill
        await FaultHelpers.AdminAsync(redis.ConnectionString, "CLIENT", "KILL", "USER", "default", "SKIPME", "yes");
        Assert.ThrowsAsync<StoreUnavailableException>(() => blocked);

        await AssertBackAsync(connection, cancellationToken);
    }

    [Test, CancelAfter(30_000)]
    public async Task A_command_unanswered_within_the_timeout_fails_and_the_connection_is_made_again(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        using var connection = await StartAsync($"{redis.ConnectionString},asyncTimeout=500", cancellationToken);

        var blocked = connection.ExecuteAsync(new RespCommand("BLPOP").Add("nothing").Add(0));
        Assert.ThrowsAsync<StoreUnavailableException>(() => blocked);

        await AssertBackAsync(connection, cancellationToken);
    }

    [Test, CancelAfter(30_000)]
    public async Task While_Redis_is_down_commands_fail_fast_and_a_started_Redis_is_found(CancellationToken cancellationToken)
    {
        var port = RedisServerProcess.FreePort();
        using var connection = RedisSubscriber.Start(ConfigurationOptions.Parse($"127.0.0.1:{port}"), NullLogger.Instance, resp3: true);
        Assert.Throws<StoreUnavailableException>(() => connection.ExecuteAsync(new RespCommand("PING")));

        using var redis = await RedisServerProcess.StartAsync(port);
        await FaultHelpers.WaitUntilAsync(() => Task.FromResult(connection.IsConnected), cancellationToken);
        Assert.That((await connection.ExecuteAsync(new RespCommand("PING"))).Text, Is.EqualTo("PONG"));
    }

    [Test, CancelAfter(30_000)]
    public async Task It_authenticates_and_selects_the_configured_database(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await FaultHelpers.AdminAsync(redis.ConnectionString, "ACL", "SETUSER", "chat", "on", ">s3cret", "~*", "&*", "+@all");
        using var connection = await StartAsync($"{redis.ConnectionString},user=chat,password=s3cret,defaultDatabase=3", cancellationToken);

        Assert.That((await connection.ExecuteAsync(new RespCommand("ACL").Add("WHOAMI"))).Text, Is.EqualTo("chat"));
        await connection.ExecuteAsync(new RespCommand("SET").Add("where").Add("here"));
        await using var check = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        Assert.That((string?)await check.GetDatabase(3).StringGetAsync("where"), Is.EqualTo("here"));
        Assert.That((string?)await check.GetDatabase(0).StringGetAsync("where"), Is.Null);
    }

    [Test, CancelAfter(30_000)]
    public async Task A_wrong_password_is_refused_and_retried_without_a_connection(CancellationToken cancellationToken)
    {
        using var redis = await RedisServerProcess.StartAsync();
        await FaultHelpers.AdminAsync(redis.ConnectionString, "ACL", "SETUSER", "chat", "on", ">s3cret", "~*", "&*", "+@all");
        using var connection = RedisSubscriber.Start(ConfigurationOptions.Parse($"{redis.ConnectionString},user=chat,password=wrong"),
            NullLogger.Instance, resp3: true);
        // Redis logs the refused AUTH (ACL LOG); by then the connection has had its answer, and must not be up.
        await FaultHelpers.WaitUntilAsync(async () =>
            ((RedisResult[])(await FaultHelpers.AdminAsync(redis.ConnectionString, "ACL", "LOG"))!).Length > 0, cancellationToken);
        Assert.That(connection.IsConnected, Is.False);
        Assert.Throws<StoreUnavailableException>(() => connection.ExecuteAsync(new RespCommand("PING")));
    }

    /// <summary>The connection is up again (it reconnects by itself) and answers a command.</summary>
    private static async Task AssertBackAsync(RedisSubscriber connection, CancellationToken cancellationToken)
    {
        await FaultHelpers.WaitUntilAsync(() => Task.FromResult(connection.IsConnected), cancellationToken);
        var pong = await connection.ExecuteAsync(new RespCommand("PING"));
        Assert.That(pong.Text, Is.EqualTo("PONG"));
    }

    private static async Task<RedisSubscriber> StartAsync(string configuration, CancellationToken cancellationToken)
    {
        var connection = RedisSubscriber.Start(ConfigurationOptions.Parse(configuration), NullLogger.Instance, resp3: true);
        await connection.Connected.WaitAsync(cancellationToken);
        return connection;
    }
}
