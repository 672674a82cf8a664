using System.Globalization;
using System.Text;
using ChatServer.Protocol;

namespace ChatServer.Tests.Protocol;

/// <summary>
/// The message <c>ts</c> is written and read digit by digit (issue 11): it must be exactly what the general
/// formatter and parser make of <see cref="MessageEncoding.TimestampFormat"/>, and refuse what they refuse.
/// </summary>
public sealed class TimestampTests
{
    private static IEnumerable<DateTime> Times()
    {
        yield return DateTime.UnixEpoch;
        yield return new DateTime(1, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        yield return new DateTime(9999, 12, 31, 23, 59, 59, 999, DateTimeKind.Utc);
        yield return new DateTime(2024, 2, 29, 12, 34, 56, 7, DateTimeKind.Utc);
        var random = new Random(11);
        for (var i = 0; i < 2_000; i++)
        {
            yield return new DateTime(random.NextInt64(DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks), DateTimeKind.Utc);
        }
    }

    [Test]
    public void Formats_as_the_general_formatter_does_and_reads_back_to_the_millisecond()
    {
        Span<byte> bytes = stackalloc byte[MessageEncoding.TimestampLength];
        foreach (var time in Times())
        {
            MessageEncoding.FormatTimestamp(time, bytes);
            var expected = time.ToString(MessageEncoding.TimestampFormat, CultureInfo.InvariantCulture);
            Assert.That(Encoding.ASCII.GetString(bytes), Is.EqualTo(expected));
            Assert.That(MessageEncoding.TryParseTimestamp(bytes, out var read), Is.True, expected);
            Assert.That(read, Is.EqualTo(new DateTime(time.Ticks - time.Ticks % TimeSpan.TicksPerMillisecond, DateTimeKind.Utc)));
            Assert.That(read.Kind, Is.EqualTo(DateTimeKind.Utc));
        }
    }

    [TestCase("2026-12-02T13:45:07.123Z", true)]
    [TestCase("2026-12-02T13:45:07.123", false)]
    [TestCase("2026-12-02T13:45:07.1234", false)]
    [TestCase("2026-12-02 13:45:07.123Z", false)]
    [TestCase("2026-13-02T13:45:07.123Z", false)]
    [TestCase("2026-00-02T13:45:07.123Z", false)]
    [TestCase("2025-02-29T13:45:07.123Z", false)]
    [TestCase("2024-02-29T13:45:07.123Z", true)]
    [TestCase("2026-12-00T13:45:07.123Z", false)]
    [TestCase("2026-12-02T24:45:07.123Z", false)]
    [TestCase("2026-12-02T13:60:07.123Z", false)]
    [TestCase("2026-12-02T13:45:60.123Z", false)]
    [TestCase("0000-12-02T13:45:07.123Z", false)]
    [TestCase("2026-1a-02T13:45:07.123Z", false)]
    [TestCase("+026-12-02T13:45:07.123Z", false)]
    [TestCase("2026-12-02T13:45:07.12-Z", false)]
    public void Reads_only_what_the_general_parser_accepts(string text, bool valid)
    {
        var general = DateTime.TryParseExact(text, MessageEncoding.TimestampFormat, CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var expected);
        Assert.That(general, Is.EqualTo(valid), "the case itself");
        Assert.That(MessageEncoding.TryParseTimestamp(Encoding.ASCII.GetBytes(text), out var read), Is.EqualTo(valid));
        if (valid)
        {
            Assert.That(read, Is.EqualTo(expected));
        }
    }

    [Test]
    public void A_stored_message_gives_back_its_ts()
    {
        var at = new DateTimeOffset(2026, 12, 2, 15, 4, 5, 678, TimeSpan.FromHours(2));
        var json = MessageEncoding.WritePrefix("room", "user", "\"ts\":\"1999-01-01T00:00:00.000Z\"", at);
        Assert.That(Encoding.UTF8.GetString(json), Does.EndWith(",\"ts\":\"2026-12-02T13:04:05.678Z\""));
        Assert.That(MessageEncoding.TryReadTimestamp(json, out var read), Is.True);
        Assert.That(read, Is.EqualTo(at.UtcDateTime));
    }
}
