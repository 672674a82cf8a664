using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using ChatServer.Hosting;
using ChatServer.Rooms;
using StackExchange.Redis;

namespace ChatServer.Moderation;

/// <summary>A user's open connections in a room, summed over every instance.</summary>
internal sealed record MemberConnections(string User, int Connections);

/// <summary>
/// Moderation that must reach every instance (API.md): closing a user's connections in a room (a kick, a ban) and
/// counting each user's connections. Each instance acts on its own connections and answers how many it had.
/// </summary>
internal interface IModerationBus
{
    /// <summary>Closes every connection of <paramref name="user"/> in <paramref name="room"/> with 4003; how many there were.</summary>
    Task<int> KickAsync(string room, string user, string reason);

    /// <summary>Each user's connections in the room across instances, sorted by user.</summary>
    Task<IReadOnlyList<MemberConnections>> ConnectionsAsync(string room);
}

/// <summary>The in-process default: one instance, so its own connections are all there are.</summary>
internal sealed class LocalModerationBus(RoomRegistry registry) : IModerationBus
{
    public Task<int> KickAsync(string room, string user, string reason) => Task.FromResult(registry.RemoveLocal(room, user, reason));

    public Task<IReadOnlyList<MemberConnections>> ConnectionsAsync(string room) =>
        Task.FromResult(ModerationReplies.Sorted(registry.LocalConnections(room)));
}

/// <summary>
/// On Redis: a command goes to every instance on one channel (a sharded one on a Cluster, so the number of receivers
/// <c>PUBLISH</c> reports is every instance), each answers on a channel of the command's own, and the caller waits for
/// as many answers as there were receivers, at most <see cref="ReplyTimeout"/>.
/// </summary>
internal sealed class RedisModerationBus(RedisConnection connection, RoomKeys keys, RoomRegistry registry, InstanceId instance,
    ILogger<RedisModerationBus> logger) : BackgroundService, IModerationBus
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(1);

    public async Task<int> KickAsync(string room, string user, string reason) =>
        (await AskAsync(new ControlCommand { Kind = ControlCommand.Kick, Room = room, User = user, Reason = reason })).Sum(r => r.Closed);

    public async Task<IReadOnlyList<MemberConnections>> ConnectionsAsync(string room)
    {
        var total = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var reply in await AskAsync(new ControlCommand { Kind = ControlCommand.Count, Room = room }))
        {
            foreach (var (user, count) in reply.Connections ?? [])
            {
                total[user] = total.GetValueOrDefault(user) + count;
            }
        }

        return ModerationReplies.Sorted(total);
    }

    private async Task<List<ControlReply>> AskAsync(ControlCommand command)
    {
        command.Id = Guid.NewGuid().ToString("N");
        var subscriber = connection.Multiplexer.GetSubscriber();
        var answers = Channel.CreateUnbounded<ControlReply>();
        var queue = await RedisCalls.Run(() => subscriber.SubscribeAsync(keys.ControlReplies(command.Id)));
        queue.OnMessage(message =>
        {
            if (JsonSerializer.Deserialize((byte[])message.Message!, ModerationJsonContext.Default.ControlReply) is { } reply)
            {
                answers.Writer.TryWrite(reply);
            }
        });
        try
        {
            var receivers = await RedisCalls.Run(() => subscriber.PublishAsync(keys.ControlCommands,
                JsonSerializer.SerializeToUtf8Bytes(command, ModerationJsonContext.Default.ControlCommand)));
            var replies = new List<ControlReply>();
            using var timeout = new CancellationTokenSource(ReplyTimeout);
            try
            {
                while (replies.Count < receivers)
                {
                    replies.Add(await answers.Reader.ReadAsync(timeout.Token));
                }
            }
            catch (OperationCanceledException)
            {
                ModerationLog.RepliesMissing(logger, command.Kind, receivers, replies.Count);
            }

            return replies;
        }
        finally
        {
            await queue.UnsubscribeAsync();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Until it is subscribed, this instance is not counted as a receiver, so nobody waits for its answer.
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var queue = await connection.Multiplexer.GetSubscriber().SubscribeAsync(keys.ControlCommands);
                queue.OnMessage(HandleAsync);
                await Task.Delay(Timeout.Infinite, stoppingToken);
            }
            catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
            {
                ModerationLog.SubscribeFailed(logger, ex);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    private async Task HandleAsync(ChannelMessage message)
    {
        if (JsonSerializer.Deserialize((byte[])message.Message!, ModerationJsonContext.Default.ControlCommand) is not { Id: { } id } command)
        {
            return;
        }

        var reply = new ControlReply { Instance = instance.Value };
        if (command.Kind == ControlCommand.Kick && command.User is { } user)
        {
            reply.Closed = registry.RemoveLocal(command.Room, user, command.Reason ?? "");
        }
        else if (command.Kind == ControlCommand.Count)
        {
            reply.Connections = registry.LocalConnections(command.Room);
        }

        try
        {
            await connection.Multiplexer.GetSubscriber().PublishAsync(keys.ControlReplies(id),
                JsonSerializer.SerializeToUtf8Bytes(reply, ModerationJsonContext.Default.ControlReply));
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            ModerationLog.ReplyFailed(logger, command.Kind, ex);   // the asker reports the missing answer
        }
    }
}

internal static class ModerationReplies
{
    public static IReadOnlyList<MemberConnections> Sorted(Dictionary<string, int> counts) =>
        [.. counts.Where(c => c.Value > 0).OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => new MemberConnections(c.Key, c.Value))];
}

internal sealed class ControlCommand
{
    public const string Kick = "kick";
    public const string Count = "count";

    public string Kind { get; set; } = "";
    public string? Id { get; set; }
    public string Room { get; set; } = "";
    public string? User { get; set; }
    public string? Reason { get; set; }
}

internal sealed class ControlReply
{
    public string Instance { get; set; } = "";
    public int Closed { get; set; }
    public Dictionary<string, int>? Connections { get; set; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ControlCommand))]
[JsonSerializable(typeof(ControlReply))]
internal sealed partial class ModerationJsonContext : JsonSerializerContext;

internal static partial class ModerationLog
{
    [LoggerMessage(900, LogLevel.Warning, "Moderation command {Kind}: {Expected} instances received it, {Answered} answered within a second.")]
    public static partial void RepliesMissing(ILogger logger, string kind, long expected, int answered);

    [LoggerMessage(901, LogLevel.Warning, "Could not subscribe to moderation commands; retrying.")]
    public static partial void SubscribeFailed(ILogger logger, Exception exception);

    [LoggerMessage(902, LogLevel.Warning, "Could not answer moderation command {Kind}.")]
    public static partial void ReplyFailed(ILogger logger, string kind, Exception exception);
}
