using System.Net;
using StackExchange.Redis;

namespace ChatServer.Tests.Faults;

internal static class FaultHelpers
{
    /// <summary>Polls <paramref name="condition"/> until it holds; the test's token bounds the wait.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        while (!await condition())
        {
            await Task.Delay(50, cancellationToken);
        }
    }

    public static async Task<HttpStatusCode> ReadyzAsync(ChatHost host, CancellationToken cancellationToken)
    {
        using var http = host.CreateHttpClient();
        return (await http.GetAsync("/readyz", cancellationToken)).StatusCode;
    }

    public static Task WaitReadyAsync(ChatHost host, HttpStatusCode status, CancellationToken cancellationToken) =>
        WaitUntilAsync(async () => await ReadyzAsync(host, cancellationToken) == status, cancellationToken);

    public static async Task<RedisResult> AdminAsync(string redis, string command, params object[] args)
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync($"{redis},allowAdmin=true");
        return await admin.GetServer(admin.GetEndPoints()[0]).ExecuteAsync(command, args);
    }

    /// <summary>Kills every connection in pub/sub mode (the instances' subscription connections); returns how many.</summary>
    public static async Task<long> KillSubscribersAsync(string redis) => (long)await AdminAsync(redis, "CLIENT", "KILL", "TYPE", "pubsub");
}
