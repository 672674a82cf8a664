using System.Diagnostics;
using System.Globalization;

namespace ChatServer.LoadTest;

/// <summary>
/// What the history archive costs during a fan-out's measured window (<c>fanout --archive-ab</c>): each server's
/// <c>/metrics</c> scraped every 100 ms for <c>chat_archive_lag_seconds</c> (scraped the same way with the archive
/// off, so both runs pay for the scrapes), PostgreSQL's CPU (the postmaster and its backends, from <c>/proc</c>), and
/// the run's messages the database holds at the window's end; then, once every server's
/// <c>chat_archive_lag_messages</c> is 0, whether the database holds every message that was sent.
/// </summary>
internal sealed class ArchiveProbe(IReadOnlyList<Uri> serverUrls, string? databaseConnectionString, int? postmasterProcessId, TextWriter progress)
    : IDisposable
{
    public static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan s_settleTimeout = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly List<double> _lagSamples = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Uri[] _metrics = [.. serverUrls.Select(u => new UriBuilder(u) { Scheme = "http", Path = "/metrics" }.Uri)];
    private Task? _sampling;
    private string _roomPrefix = "";
    private long _started;
    private double? _postgresCpuBefore;
    private int _scrapes;
    private int _failedScrapes;

    /// <summary>The window starts: sampling begins, PostgreSQL's CPU is read. The run's rooms start with <paramref name="roomPrefix"/>.</summary>
    public void Begin(string roomPrefix)
    {
        _roomPrefix = roomPrefix;
        _postgresCpuBefore = postmasterProcessId is { } pid ? ProcStats.TreeCpuSeconds(pid) : null;
        _started = Stopwatch.GetTimestamp();
        _sampling = SampleAsync(_stop.Token);
    }

    /// <summary>The window ends (with the servers' CPU reading): sampling stops, PostgreSQL's CPU and the database's count are read.</summary>
    public async Task<ArchiveWindow> EndWindowAsync(CancellationToken cancellationToken)
    {
        var postgresCpu = postmasterProcessId is { } pid ? ProcStats.TreeCpuSeconds(pid) - _postgresCpuBefore : null;
        var seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
        await _stop.CancelAsync();
        await _sampling!;
        long? archived = databaseConnectionString is { } db ? await HistoryDatabases.CountAsync(db, _roomPrefix, cancellationToken) : null;
        return new ArchiveWindow(seconds, postgresCpu, archived, _scrapes, _failedScrapes);
    }

    /// <summary>
    /// The figures: the window's, the lag samples', and (with the archive on) whether the database came to hold all
    /// <paramref name="expected"/> messages once every server's lag was 0, waiting up to a minute for it.
    /// </summary>
    public async Task<ArchiveResult> ResultAsync(ArchiveWindow window, long expected, CancellationToken cancellationToken)
    {
        long? settled = null;
        double? settleSeconds = null;
        if (databaseConnectionString is { } db)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                var lagging = await LaggingMessagesAsync(cancellationToken);
                settled = await HistoryDatabases.CountAsync(db, _roomPrefix, cancellationToken);
                if ((lagging == 0 && settled >= expected) || clock.Elapsed > s_settleTimeout)
                {
                    break;
                }

                await Task.Delay(SampleInterval, cancellationToken);
            }

            settleSeconds = clock.Elapsed.TotalSeconds;
            await progress.WriteLineAsync($"archive: {settled} of {expected} messages in the database {settleSeconds:F1} s after the window " +
                $"({(settled == expected ? "all of them" : "NOT all")})");
        }

        _lagSamples.Sort();
        return new ArchiveResult(
            Scrapes: window.Scrapes,
            FailedScrapes: window.FailedScrapes,
            LagSamples: _lagSamples.Count,
            LagP50Seconds: Percentile(0.50),
            LagP99Seconds: Percentile(0.99),
            LagMaxSeconds: _lagSamples.Count == 0 ? null : _lagSamples[^1],
            WindowSeconds: window.Seconds,
            ArchivedInWindow: window.Archived,
            ArchivedPerSecond: window.Archived / window.Seconds,
            PostgresCpuSeconds: window.PostgresCpuSeconds,
            Expected: databaseConnectionString is null ? null : expected,
            ArchivedAfterSettle: settled,
            SettleSeconds: settleSeconds);
    }

    public void Dispose()
    {
        _http.Dispose();
        _stop.Dispose();
    }

    private async Task SampleAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(SampleInterval);
        try
        {
            do
            {
                var pages = await Task.WhenAll(_metrics.Select(uri => ScrapeAsync(uri, cancellationToken)));
                foreach (var page in pages)
                {
                    if (page is not null && Gauge(page, "chat_archive_lag_seconds") is { } lag)
                    {
                        _lagSamples.Add(lag);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the window ended
        }
    }

    private async Task<double?> LaggingMessagesAsync(CancellationToken cancellationToken)
    {
        double total = 0;
        foreach (var page in await Task.WhenAll(_metrics.Select(uri => ScrapeAsync(uri, cancellationToken))))
        {
            if (page is null || Gauge(page, "chat_archive_lag_messages") is not { } waiting)
            {
                return null;
            }

            total += waiting;
        }

        return total;
    }

    private async Task<string?> ScrapeAsync(Uri uri, CancellationToken cancellationToken)
    {
        try
        {
            var page = await _http.GetStringAsync(uri, cancellationToken);
            Interlocked.Increment(ref _scrapes);
            return page;
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Interlocked.Increment(ref _failedScrapes);
            return null;
        }
    }

    /// <summary>The value of a gauge in Prometheus text (<c>name{labels} value</c> or <c>name value</c>); null when absent.</summary>
    internal static double? Gauge(string page, string name)
    {
        foreach (var line in page.AsSpan().EnumerateLines())
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' ')
            {
                var value = line[(line.LastIndexOf(' ') + 1)..];
                return double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    private double? Percentile(double p) =>
        _lagSamples.Count == 0 ? null : _lagSamples[(int)Math.Min(_lagSamples.Count - 1, Math.Ceiling(p * _lagSamples.Count) - 1)];
}

/// <summary>What <see cref="ArchiveProbe.EndWindowAsync"/> read when the measured window ended.</summary>
internal sealed record ArchiveWindow(double Seconds, double? PostgresCpuSeconds, long? Archived, int Scrapes, int FailedScrapes);

/// <summary>
/// The archive during one measured fan-out window. With the archive off only the scrapes and PostgreSQL's (idle) CPU;
/// with it on, also the lag samples (every server's gauge every 100 ms), the run's messages in the database at the
/// window's end, per second of the window, and how many the database held once every server's lag was 0.
/// </summary>
internal sealed record ArchiveResult(int Scrapes, int FailedScrapes, int LagSamples, double? LagP50Seconds, double? LagP99Seconds,
    double? LagMaxSeconds, double WindowSeconds, long? ArchivedInWindow, double? ArchivedPerSecond, double? PostgresCpuSeconds, long? Expected,
    long? ArchivedAfterSettle, double? SettleSeconds)
{
    public bool? Complete => Expected is { } expected ? ArchivedAfterSettle == expected : null;
}
