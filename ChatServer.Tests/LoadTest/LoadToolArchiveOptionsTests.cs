using ChatServer.LoadTest;

namespace ChatServer.Tests.LoadTest;

/// <summary>
/// The load tool's history-database options (<c>--history-db</c>, <c>--start-postgres</c>, <c>--archive-ab</c>,
/// <c>--history-messages</c>, <c>--pause-ms</c>), checked when parsed, and how it reads a gauge from <c>/metrics</c>.
/// </summary>
public sealed class LoadToolArchiveOptionsTests
{
    [Test]
    public void A_history_database_is_either_given_or_started_here() => Assert.Multiple(() =>
    {
        var given = Options.Parse(["--history-db", "Host=db;Username=chat", "--start-servers", "2"]);
        Assert.That((given.HistoryDb, given.StartPostgres, given.HasHistoryDatabase), Is.EqualTo(("Host=db;Username=chat", false, true)));

        var started = Options.Parse(["--start-postgres", "--archive-ab"]);
        Assert.That((started.HistoryDb, started.StartPostgres, started.ArchiveAb, started.HasHistoryDatabase), Is.EqualTo(((string?)null, true, true, true)));

        var none = Options.Parse(["--start-servers", "1"]);
        Assert.That((none.HasHistoryDatabase, none.ArchiveAb, none.HistoryMessages, none.PauseMs), Is.EqualTo((false, false, 1_000_000, 20.0)));

        var seeded = Options.Parse(["--start-postgres", "--history-messages", "5000", "--pause-ms", "0"]);
        Assert.That((seeded.HistoryMessages, seeded.PauseMs), Is.EqualTo((5000, 0.0)));
    });

    [Test]
    public void Contradictions_are_refused_before_anything_starts() => Assert.Multiple(() =>
    {
        Assert.That(() => Options.Parse(["--archive-ab"]), Throws.ArgumentException.With.Message.Contains("--start-postgres or --history-db"));
        Assert.That(() => Options.Parse(["--start-postgres", "--history-db", "Host=db"]), Throws.ArgumentException.With.Message.Contains("not both"));
        Assert.That(() => Options.Parse(["--start-postgres", "--archive-ab", "--sweep"]), Throws.ArgumentException.With.Message.Contains("--sweep"));
        Assert.That(() => Options.Parse(["--start-postgres", "--archive-ab", "--peers", "node"]), Throws.ArgumentException.With.Message.Contains("peers"));
        Assert.That(() => Options.Parse(["--history-messages", "10"]), Throws.ArgumentException.With.Message.Contains("at least 1000"));
        Assert.That(() => Options.Parse(["--history-db"]), Throws.ArgumentException.With.Message.Contains("needs a value"));
    });

    [Test]
    public void The_lag_gauge_is_read_from_the_servers_prometheus_text() => Assert.Multiple(() =>
    {
        const string Page = """
            # TYPE chat_archive_lag_messages gauge
            chat_archive_lag_messages{otel_scope_name="ChatServer"} 12
            # TYPE chat_archive_lag_seconds gauge
            # HELP chat_archive_lag_seconds How long the oldest message not yet in the history database has waited.
            chat_archive_lag_seconds{otel_scope_name="ChatServer"} 0.0735
            chat_archive_lag_seconds_other 7
            """;
        Assert.That(ArchiveProbe.Gauge(Page, "chat_archive_lag_seconds"), Is.EqualTo(0.0735));
        Assert.That(ArchiveProbe.Gauge(Page, "chat_archive_lag_messages"), Is.EqualTo(12));
        Assert.That(ArchiveProbe.Gauge("chat_archive_lag_seconds 1.5e-3", "chat_archive_lag_seconds"), Is.EqualTo(0.0015));
        Assert.That(ArchiveProbe.Gauge("# TYPE chat_archive_lag_seconds gauge\nchat_archive_written_total 3", "chat_archive_lag_seconds"), Is.Null,
            "the archive is off: the gauge is absent, and a comment naming it is not a value");
    });
}
