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

        var (seq, epoch, _) = await log.AppendAsync(room, prefix);
        var stored = (await log.ReadLatestAsync(room, 1, cancellationToken)).Messages.Single();

        Assert.That(RoomEntry.TryParse(RoomEntry.EncodeMessage(prefix, seq, epoch), out var expected), Is.True);
        Assert.That((stored.Seq, stored.Epoch), Is.EqualTo((seq, epoch)));
        Assert.That(Encoding.UTF8.GetString(stored.Json.Span), Is.EqualTo(Encoding.UTF8.GetString(expected.Json.Span)));
    }

    [Test, CancelAfter(15_000)]
    public async Task A_log_behind_what_an_instance_has_seen_in_its_epoch_starts_a_new_epoch_and_reuses_no_seq(CancellationToken cancellationToken)
    {
        var log = HostA.Services.GetRequiredService<IMessageLog>();
        var room = TestNames.Room();
        byte[] Text(string text) => MessageEncoding.WritePrefix(room, "u", text, DateTimeOffset.UnixEpoch);
        await log.AppendAsync(room, Text("t1"));
        var (two, epoch, _) = await log.AppendAsync(room, Text("t2"));

        // Seen up to the head, or in another epoch: nothing changes.
        var (three, same, _) = await log.AppendAsync(room, Text("t3"), new LogMark(epoch, two));
        var other = await log.ReadLatestAsync(room, 10, cancellationToken, new LogMark("elsewhere", 99));
        Assert.That((three, same, other.Epoch, other.Head), Is.EqualTo((3L, epoch, epoch, 3L)));

        // Seen beyond the head in the same epoch (the store went backward): a new, empty epoch, by a read or an append.
        var read = await log.ReadAfterAsync(room, 0, 10, cancellationToken, new LogMark(epoch, 5));
        Assert.That((read.Epoch, read.Head, read.Messages.Count), Is.Not.EqualTo((epoch, 3L, 3)));
        Assert.That((read.Head, read.First, read.Messages.Count), Is.EqualTo((0L, 1L, 0)), read.Epoch);
        var (first, next, _) = await log.AppendAsync(room, Text("n1"), new LogMark(read.Epoch, 0));
        var (again, rotated, _) = await log.AppendAsync(room, Text("n2"), new LogMark(next, 7));
        var history = await log.ReadLatestAsync(room, 10, cancellationToken);

        Assert.That((first, next), Is.EqualTo((1L, read.Epoch)));
        Assert.That((again, rotated), Is.Not.EqualTo((2L, next)), "an append behind its mark rotates too");
        Assert.That((again, history.Epoch, history.Head), Is.EqualTo((1L, rotated, 1L)));
        Assert.That(history.Messages.Select(m => (m.Seq, m.Epoch)), Is.EqualTo(new[] { (1L, rotated) }));
    }
}
