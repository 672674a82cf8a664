using ChatServer.Rooms;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.Retention;

/// <summary>
/// The in-process log's cap (<c>Chat:MaxInProcessRooms</c>): however many rooms are read, it keeps at most the cap, and
/// the one in use survives while idle ones go. Only in-process: on Redis, rooms are bounded by their TTL.
/// </summary>
public sealed class InProcessRoomCapTests() : TwoHostFixture(Backend.InProcess)
{
    private const int Cap = 50;

    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:MaxInProcessRooms"] = Cap.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Test, CancelAfter(20_000)]
    public async Task The_in_process_log_keeps_at_most_the_cap_dropping_the_least_recently_used_first(CancellationToken cancellationToken)
    {
        var log = (InMemoryMessageLog)HostA.Services.GetRequiredService<IMessageLog>();
        var (hot, cold) = (TestNames.Room("hot"), TestNames.Room("cold"));
        await log.AppendAsync(hot, global::ChatServer.Protocol.MessageEncoding.WritePrefix(hot, "u", "kept", DateTimeOffset.UnixEpoch));
        var coldEpoch = (await log.ReadLatestAsync(cold, 0, cancellationToken)).Epoch;
        var hotEpoch = (await log.ReadLatestAsync(hot, 0, cancellationToken)).Epoch;
        for (var i = 0; i < Cap * 4; i++)
        {
            await log.ReadLatestAsync(TestNames.Room("passing"), 0, cancellationToken);
            await log.ReadLatestAsync(hot, 0, cancellationToken);   // in use all along
            Assert.That(log.RoomCount, Is.LessThanOrEqualTo(Cap));
        }

        var hotNow = await log.ReadLatestAsync(hot, 1, cancellationToken);
        Assert.That((hotNow.Epoch, hotNow.Head, hotNow.Messages.Count), Is.EqualTo((hotEpoch, 1L, 1)), "the room in use is kept");
        Assert.That((await log.ReadLatestAsync(cold, 0, cancellationToken)).Epoch, Is.Not.EqualTo(coldEpoch), "the idle one was dropped");
    }
}
