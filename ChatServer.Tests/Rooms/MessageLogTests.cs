using System.Text;
using ChatServer.Protocol;
using ChatServer.Rooms;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.Rooms;

/// <summary>
/// Both logs, the real ones (Redis through the host's own wiring, the Cluster, in-process): the same ranges, the same
/// head, and the same bytes for a stored entry, whether the Lua fragment or the C# twin wrote it.
/// </summary>
[TestFixture(Backend.Redis)]
[TestFixture(Backend.InProcess)]
[TestFixture(Backend.Cluster)]
public sealed class MessageLogTests(Backend backend) : TwoHostFixture(backend)
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Chat:HistoryLength"] = "5",
    };

    [Test, CancelAfter(15_000)]
    public async Task Reads_return_exactly_their_range_with_the_head_and_the_oldest_kept(CancellationToken cancellationToken)
    {
        var log = HostA.Services.GetRequiredService<IMessageLog>();
        var room = TestNames.Room();
        for (var i = 1; i <= 7; i++)   // keeps 3..7
        {
            await log.AppendAsync(room, MessageEncoding.WritePrefix(room, "u", $"t{i}", DateTimeOffset.UnixEpoch));
        }

        var latest = await log.ReadLatestAsync(room, 2, cancellationToken);
        var before = await log.ReadBeforeAsync(room, 6, 10, cancellationToken);
        var after = await log.ReadAfterAsync(room, 1, 2, cancellationToken);
        var head = await log.ReadLatestAsync(room, 0, cancellationToken);

        Assert.Multiple(() =>
        {
            Assert.That((latest.Head, latest.First), Is.EqualTo((7L, 3L)));
            Assert.That(latest.Messages.Select(m => m.Seq), Is.EqualTo(new long[] { 6, 7 }));
            Assert.That(before.Messages.Select(m => m.Seq), Is.EqualTo(new long[] { 3, 4, 5 }));
            Assert.That(after.Messages.Select(m => m.Seq), Is.EqualTo(new long[] { 3, 4 }), "trimmed seqs are skipped");
            Assert.That((head.Head, head.Epoch, head.Messages.Count), Is.EqualTo((7L, latest.Epoch, 0)));
        });
    }

    [Test, CancelAfter(15_000)]
    public async Task A_stored_entry_has_the_layout_RoomEntry_defines(CancellationToken cancellationToken)
    {
        var log = HostA.Services.GetRequiredService<IMessageLog>();
        var room = TestNames.Room();
        var prefix = MessageEncoding.WritePrefix(room, "zoë", "\"quoted\" ✓", DateTimeOffset.UnixEpoch);

        var (seq, epoch) = await log.AppendAsync(room, prefix);
        var stored = (await log.ReadLatestAsync(room, 1, cancellationToken)).Messages.Single();

        Assert.That(RoomEntry.TryParse(RoomEntry.EncodeMessage(prefix, seq, epoch), out var expected), Is.True);
        Assert.That((stored.Seq, stored.Epoch), Is.EqualTo((seq, epoch)));
        Assert.That(Encoding.UTF8.GetString(stored.Json.Span), Is.EqualTo(Encoding.UTF8.GetString(expected.Json.Span)));
    }
}
