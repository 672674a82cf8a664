using System.Globalization;
using System.Text.Json;

namespace ChatServer.LoadTest;

/// <summary>
/// <c>dotnet run -c Release --project ChatServer.LoadTest -- fanout|idle|history|coldstart|rooms [options]</c>; see <see cref="Usage"/> and
/// docs/benchmarks.md. Progress goes to the console, a table at the end, and the results to a JSON file.
/// </summary>
internal static class LoadTestProgram
{
    /// <summary>How the <c>--baseline-exe</c>/<c>--baseline-dll</c> build is named in the tables and the JSON.</summary>
    private const string BaselineName = "ChatServer (baseline)";

    private const string Usage = """
        Usage: dotnet run -c Release --project ChatServer.LoadTest -- <fanout|idle|history|historydb|coldstart|rooms> [options]

        Where the servers are (one of):
          --start-servers N     start N ChatServer instances (and a redis-server) here, stop them at the end
          --url ws://host/ws    a running instance (repeat for several); --server-pid PID to read its CPU/RSS
        Common:
          --server-dll PATH     the ChatServer.dll to start with dotnet (default: ChatServer/bin/<config>/net10.0/ChatServer.dll)
          --server-exe PATH     a native ChatServer executable to start instead (the Native AOT publish output)
          --aot                 publish the server as the Dockerfile does (Native AOT) into ChatServer/bin/aot and start that
          --in-process          start our servers without Redis (in-process bus); the peers still get the Redis
          --server-env K=V      extra environment for started servers (repeatable), e.g. DOTNET_gcServer=0
          --out FILE            JSON results (default: loadtest-<mode>-<time>.json)
          --baseline-exe PATH   an earlier native build of ours, run right after ours and before the peers (fanout, idle,
                                coldstart; needs --start-servers), started exactly as ours: same environment, --server-env,
                                Redis (or --in-process); shown as "ChatServer (baseline)", with the ratio of ours against it
          --baseline-dll PATH   the same for an earlier ChatServer.dll, run with dotnet
          --peers node,bun      then the same scenario against these peers, one after the other, on the same Redis, and the
                                ratios of ours against each; needs --start-servers. node: ../shared/peers/node-ws-chat (ws +
                                ioredis, run with node); bun: ../shared/peers/bun-chat (Bun.serve + Bun.RedisClient, run with
                                the bun its lock file installs). Each is laid out in a temporary folder and npm ci'd once.
          --peer                every peer: --peers node,bun
          --node-dir DIR        the Node peer's folder (--peer-dir: the same)
          --bun-dir DIR         the Bun peer's folder
          --start-postgres      start a throwaway PostgreSQL here (Debian's binaries; as root via runuser -u postgres);
                                servers started here get History__ConnectionString to a fresh database on it
          --history-db CONN     the same on a PostgreSQL you run (Npgsql connection string; its user must be allowed to
                                create databases: the tool makes its own and drops them at the end)
        fanout:
          --rooms R (10) --members M (20) --rate MSG_PER_S (2500) --duration S (20) --drain S (5)
          --warmup S (10)       an unmeasured run at the first rate first, so JIT tiering is not billed to the figures
          --sweep               raise the rate by --step (1.25x) until p99 > --p99-bound-ms (100) or anything is lost
          --max-rate MSG_PER_S  stop a sweep here (100000)
          --archive-ab          (needs --start-postgres or --history-db, and --start-servers) the same scenario twice:
                                archive off, then on (a fresh database); deliveries per server CPU-second of both and
                                the ratio, the archive's messages/s into PostgreSQL and PostgreSQL's CPU over the
                                measured window, archive lag p99 (chat_archive_lag_seconds of every server every 100 ms),
                                and whether every message sent reached the database
        idle:
          --connections N (10000) --rooms K (100) --source-addresses A (8) --settle S (5)
          --at-rest S (0)       then read the server's CPU for S s with every connection idle (% of a core)
        history:
          --history-lengths L1,L2 (100,10000)  with --start-servers 1: one server per length, Chat__HistoryLength=L,
                                each room filled to L; with --url: one length, the server's own HistoryLength
          --samples N (200)     timed round trips of each read: newest page of 50, a middle page, a 5-message catch-up
        historydb (needs --start-postgres or --history-db; one server started here, on a fresh Redis):
          --history-messages N (1000000)  seeded into one room (one epoch) directly in SQL, then VACUUM ANALYZE
          --samples N (200)     timed round trips of each: a history page of 50 at a random before (with the seeded
                                epoch, so the page comes from PostgreSQL), and search for a common word, a rare word,
                                a very rare word and two words, and a control page from Redis; each statement also
                                timed straight from the tool, and EXPLAIN ANALYZE of each
          --pause-ms MS (20)    before each timed request: the server holds a write that follows its previous one within
                                Chat__WriteDelay (10 ms) until its next tick, so back-to-back requests would time that
        coldstart (process start to the first 200 from /readyz; one instance at a time; one uncounted warm-up start each):
          --runs N (7)          start and stop ours N times (with a baseline or peers: ours, the baseline, then each peer,
                                N times, alternating)
        rooms (a flood of room names: server RSS, Redis used_memory and keys before, after, and after everyone left):
          --rooms R (20000)     distinct rooms visited, each by one sign-in that moves a connection there (leaving the last)
          --clients C (16) --messages-per-room M (1) --settle S (5)
          --repeat K (1)        flood K times with new names (memory after each), to see whether it keeps growing
        """;

    private static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("fanout" or "idle" or "history" or "historydb" or "coldstart" or "rooms"))
        {
            await Console.Error.WriteLineAsync(Usage);
            return 2;
        }

        var mode = args[0];
        var options = Options.Parse(args.AsSpan(1));
        if (options.Baseline is not null && mode is ("history" or "historydb" or "rooms"))
        {
            await Console.Error.WriteLineAsync("--baseline-exe/--baseline-dll: fanout, idle and coldstart only (history, historydb and rooms run ours alone).");
            return 2;
        }

        if ((options.ArchiveAb && (mode != "fanout" || options.StartServers == 0)) || (mode == "historydb" && !options.HasHistoryDatabase))
        {
            await Console.Error.WriteLineAsync(
                "--archive-ab is for fanout with --start-servers N; historydb needs --start-postgres or --history-db CONNSTRING.");
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        var output = Console.Out;
        // Declared before the servers, so disposed after them: the servers let go of their databases first.
        using var postgres = options.StartPostgres ? await StartPostgresAsync(output, cancel.Token) : null;
        await using var databases = options.HasHistoryDatabase
            ? new HistoryDatabases(options.HistoryDb ?? postgres!.ConnectionString, postgres?.ProcessId, dropAtEnd: postgres is null, output)
            : null;
        await using var processes = new LocalProcesses(output);
        var server = options.Aot ? await NativeBuild.PublishAsync(output, cancel.Token) : options.Server;
        if (databases is not null && !options.ArchiveAb && mode != "historydb")
        {
            // Every server started here (ours and a baseline) archives into one fresh database for the whole run.
            options.ServerEnvironment["History__ConnectionString"] = await databases.CreateDatabaseAsync(mode, cancel.Token);
        }

        if (mode == "coldstart")
        {
            return await ColdStartsAsync(options, server, processes, output, args, cancel.Token);
        }

        var urls = options.Urls.Select(u => new Uri(u)).ToList();
        var pids = options.ServerPid is { } pid ? new List<int> { pid } : [];
        if (mode == "history")
        {
            return await RunHistoryAsync(args, options, server, processes, urls, output, cancel.Token);
        }

        if (mode == "rooms")
        {
            return await RunRoomsAsync(args, options, server, processes, urls, pids, output, cancel.Token);
        }

        if (mode == "historydb")
        {
            return await RunHistoryDbAsync(args, options, server, processes, databases!, output, cancel.Token);
        }

        if (options.ArchiveAb)
        {
            return await RunArchiveAbAsync(args, options, server, processes, databases!, output, cancel.Token);
        }

        var peers = options.Peers;
        if ((peers.Count > 0 || options.Baseline is not null) && options.StartServers == 0)
        {
            await Console.Error.WriteLineAsync(
                "--baseline-exe/--baseline-dll and --peer/--peers need --start-servers N: every implementation is started here, one after the other.");
            return 2;
        }

        string? redis = null;   // where ours ran, for the baseline: null is the in-process bus (or servers not started here)
        if (options.StartServers > 0)
        {
            await processes.StartRedisAsync(cancel.Token);
            redis = options.InProcess ? null : $"127.0.0.1:{processes.RedisPort}";
            await processes.StartServersAsync(options.StartServers, server, redis, options.ServerEnvironment, cancel.Token);
            urls = [.. processes.Servers.Select(s => s.Url)];
            pids = [.. processes.Servers.Select(s => s.ProcessId)];
        }

        if (urls.Count == 0)
        {
            await Console.Error.WriteLineAsync("Give --start-servers N or at least one --url.");
            return 2;
        }

        var report = new LoadTestReport
        {
            Mode = mode,
            Command = string.Join(' ', args),
            Machine = MachineInfo.Describe(),
            StartedAt = DateTimeOffset.UtcNow,
            Ours = new ScenarioReport
            {
                Server = "ChatServer",
                ServerPath = options.StartServers > 0 ? server : null,
                ColdStartsMs = [.. processes.Servers.Select(s => s.ColdStartMs)],
            },
        };

        await output.WriteLineAsync("== ChatServer ==");
        await RunScenarioAsync(mode, options, urls, pids, report.Ours, output, cancel.Token);

        // The others, in the order they run after ours: the baseline build, started exactly as ours (same environment,
        // --server-env and Redis), then each peer.
        var others = new List<(ScenarioReport Report, string Heading, Func<Task> StartAsync)>();
        if (options.Baseline is { } baseline)
        {
            report.Baseline = new ScenarioReport { Server = BaselineName, ServerPath = baseline };
            others.Add((report.Baseline, $"== {BaselineName} ==",
                () => processes.StartServersAsync(options.StartServers, baseline, redis, options.ServerEnvironment, cancel.Token, BaselineName)));
        }

        if (peers.Count > 0)
        {
            report.Peers = [];
            foreach (var peer in peers)
            {
                var peerReport = new ScenarioReport { Server = peer.Name };
                report.Peers.Add(peerReport);
                others.Add((peerReport, $"== {peer.Name} (peer) ==", () => processes.StartPeersAsync(options.StartServers, peer, cancel.Token)));
            }
        }

        foreach (var (other, heading, startAsync) in others)
        {
            // Same Redis, same tool, same scenario, right after ours (and the one before); the previous
            // implementation is stopped first so this one has the cores.
            await processes.StopServersAsync();
            await startAsync();
            other.ColdStartsMs.AddRange(processes.Servers.Select(s => s.ColdStartMs));
            await output.WriteLineAsync(heading);
            await RunScenarioAsync(mode, options, [.. processes.Servers.Select(s => s.Url)], [.. processes.Servers.Select(s => s.ProcessId)],
                other, output, cancel.Token);
        }

        if (others.Count > 0)
        {
            PrintRatios(output, report.Ours, [.. others.Select(o => o.Report)]);
        }

        await WriteReportAsync(args, options, report, output, cancel.Token);
        return 0;
    }

    /// <summary>
    /// Cold start alone: one instance at a time is started, timed to its first 200 from <c>/readyz</c>, and stopped;
    /// on every run, the baseline build and each peer are started right after ours, so all see the same machine load.
    /// </summary>
    /// <summary><c>--start-postgres</c>: a throwaway PostgreSQL with its default durability, deleted when the run ends.</summary>
    private static async Task<PostgresServerProcess> StartPostgresAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var postgres = await PostgresServerProcess.StartAsync(durable: true, cancellationToken);
        await output.WriteLineAsync($"postgres pid {postgres.ProcessId} on 127.0.0.1:{postgres.Port} ({postgres.Binaries}, data in {postgres.DataDirectory})");
        return postgres;
    }

    private static async Task<int> ColdStartsAsync(Options options, string server, LocalProcesses processes, TextWriter output,
        string[] args, CancellationToken cancellationToken)
    {
        await processes.StartRedisAsync(cancellationToken);
        var redis = options.InProcess ? null : $"127.0.0.1:{processes.RedisPort}";
        var bus = redis is null ? "in-process" : "Redis";
        var peers = options.Peers;
        var report = new LoadTestReport
        {
            Mode = "coldstart",
            Command = string.Join(' ', args),
            Machine = MachineInfo.Describe(),
            StartedAt = DateTimeOffset.UtcNow,
            Ours = new ScenarioReport { Server = $"ChatServer ({Path.GetFileName(server)}, {bus})", ServerPath = server },
            Baseline = options.Baseline is { } path
                ? new ScenarioReport { Server = $"ChatServer (baseline, {Path.GetFileName(path)}, {bus})", ServerPath = path }
                : null,
            Peers = peers.Count > 0 ? [.. peers.Select(p => new ScenarioReport { Server = $"{p.Name} (Redis)" })] : null,
        };

        // After ours, in this order on every run: the baseline (started exactly as ours), then each peer.
        var others = new List<(ScenarioReport Report, string Name, Func<Task> StartAsync)>();
        if (report.Baseline is { ServerPath: { } baseline })
        {
            others.Add((report.Baseline, BaselineName,
                () => processes.StartServersAsync(1, baseline, redis, options.ServerEnvironment, cancellationToken, BaselineName)));
        }

        for (var i = 0; i < peers.Count; i++)
        {
            var peer = peers[i];
            others.Add((report.Peers![i], peer.Name, () => processes.StartPeersAsync(1, peer, cancellationToken)));
        }

        await output.WriteLineAsync(
            $"cold start of {server}, {options.Runs} runs{(others.Count > 0 ? $", each followed by {string.Join(", then ", others.Select(o => o.Name))}" : "")}");
        // One start of each, not counted: the first requests of this tool's own HTTP client are JIT-compiled, which
        // would be billed to whichever server is first.
        for (var run = -1; run < options.Runs; run++)
        {
            if (run == -1)
            {
                await output.WriteLineAsync("warm-up starts (not counted):");
            }

            await processes.StartServersAsync(1, server, redis, options.ServerEnvironment, cancellationToken);
            if (run >= 0)
            {
                report.Ours.ColdStartsMs.Add(processes.Servers[0].ColdStartMs);
            }

            await processes.StopServersAsync();
            foreach (var (other, _, startAsync) in others)
            {
                await startAsync();
                if (run >= 0)
                {
                    other.ColdStartsMs.Add(processes.Servers[0].ColdStartMs);
                }

                await processes.StopServersAsync();
            }
        }

        output.WriteLine();
        output.WriteLine("| server | runs ms | median ms | min–max ms |");
        output.WriteLine("|---|---|---:|---:|");
        foreach (var scenario in (IEnumerable<ScenarioReport>)[report.Ours, .. others.Select(o => o.Report)])
        {
            var runs = scenario.ColdStartsMs;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {scenario.Server} | {string.Join(", ", runs.Select(ms => ms.ToString("F0", CultureInfo.InvariantCulture)))} | {Median(runs):F0} | {runs.Min():F0}–{runs.Max():F0} |"));
        }

        if (others.Count > 0)
        {
            PrintRatios(output, report.Ours, [.. others.Select(o => o.Report)]);
        }

        await WriteReportAsync(args, options, report, output, cancellationToken);
        return 0;
    }

    private static async Task RunScenarioAsync(string mode, Options options, List<Uri> urls, List<int> pids, ScenarioReport report,
        TextWriter output, CancellationToken cancellationToken, Func<ArchiveProbe>? archive = null)
    {
        if (mode == "fanout")
        {
            var rate = options.Rate;
            if (options.Warmup > 0)
            {
                await output.WriteLineAsync($"warm-up: {options.Warmup:F0} s at {rate:F0} msg/s (not measured)");
                await new FanoutRunner(new FanoutSettings(urls, options.Rooms, options.Members, rate, options.Warmup, options.Drain), pids, output)
                    .RunAsync(cancellationToken);
            }

            while (true)
            {
                var settings = new FanoutSettings(urls, options.Rooms, options.Members, rate, options.Duration, options.Drain);
                using var probe = archive?.Invoke();
                var result = await new FanoutRunner(settings, pids, output, probe).RunAsync(cancellationToken);
                report.Fanout.Add(result);
                var passes = result.Passes(options.P99BoundMs);
                if (passes)
                {
                    report.HighestPassingRate = rate;
                }

                await output.WriteLineAsync($"fanout at {rate:F0} msg/s: {(passes ? "pass" : "FAIL")} (p99 {result.LatencyP99Ms:F1} ms, lost {result.Lost})");
                if (!options.Sweep || !passes || rate * options.Step > options.MaxRate)
                {
                    break;
                }

                rate = Math.Round(rate * options.Step);
            }

            PrintFanoutTable(output, report);
        }
        else
        {
            var settings = new IdleSettings(urls[0], options.Connections, options.Rooms, options.SourceAddresses, SettleSeconds: options.Settle,
                AtRestSeconds: options.AtRest);
            report.Idle = await new IdleRunner(settings, pids.Count > 0 ? pids[0] : null, output).RunAsync(cancellationToken);
            PrintIdleTable(output, report);
        }
    }

    /// <summary>
    /// <c>fanout --archive-ab</c>: the same scenario (warm-up included) on the same Redis and PostgreSQL, first with the
    /// archive off, then on (fresh servers on a fresh database), each measured with an <see cref="ArchiveProbe"/>; then the
    /// two side by side with the ratio on ÷ off and the archive's own figures.
    /// </summary>
    private static async Task<int> RunArchiveAbAsync(string[] args, Options options, string server, LocalProcesses processes,
        HistoryDatabases databases, TextWriter output, CancellationToken cancellationToken)
    {
        await processes.StartRedisAsync(cancellationToken);
        var redis = options.InProcess ? null : $"127.0.0.1:{processes.RedisPort}";
        var postmaster = await databases.PostmasterProcessIdAsync(cancellationToken);
        var report = new LoadTestReport
        {
            Mode = args[0],
            Command = string.Join(' ', args),
            Machine = MachineInfo.Describe(),
            StartedAt = DateTimeOffset.UtcNow,
            Ours = new ScenarioReport { Server = "ChatServer (archive off)", ServerPath = server },
        };
        var archiveOn = report.ArchiveOn = new ScenarioReport { Server = "ChatServer (archive on)", ServerPath = server };

        foreach (var (scenario, on) in new[] { (report.Ours, false), (archiveOn, true) })
        {
            var environment = new Dictionary<string, string>(options.ServerEnvironment);
            if (on)
            {
                environment["History__ConnectionString"] = await databases.CreateDatabaseAsync("archive_on", cancellationToken);
            }

            await processes.StartServersAsync(options.StartServers, server, redis, environment, cancellationToken);
            scenario.ColdStartsMs.AddRange(processes.Servers.Select(s => s.ColdStartMs));
            List<Uri> urls = [.. processes.Servers.Select(s => s.Url)];
            await output.WriteLineAsync($"== {scenario.Server} ==");
            await RunScenarioAsync("fanout", options, urls, [.. processes.Servers.Select(s => s.ProcessId)], scenario, output, cancellationToken,
                () => new ArchiveProbe(urls, on ? environment["History__ConnectionString"] : null, postmaster, output));
            await processes.StopServersAsync();
        }

        PrintArchiveAb(output, report.Ours.Fanout[^1], archiveOn.Fanout[^1]);
        await WriteReportAsync(args, options, report, output, cancellationToken);
        return 0;
    }

    private static void PrintArchiveAb(TextWriter output, FanoutResult off, FanoutResult on)
    {
        static string F(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "–";
        static double? PerCpu(FanoutResult r) => r.ServerCpuSeconds is { } cpu && r.Archive?.PostgresCpuSeconds is { } pg && cpu + pg > 0
            ? r.Delivered / (cpu + pg)
            : null;
        static double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? x / y : null;

        output.WriteLine();
        output.WriteLine($"Archive off, then on ({on.Rooms} rooms × {on.Members} members, {on.Rate:F0} msg/s for {on.DurationSeconds:F0} s, over {on.Urls} server(s)):");
        output.WriteLine();
        output.WriteLine("| figure | archive off | archive on | on ÷ off |");
        output.WriteLine("|---|---:|---:|---:|");
        void Row(string figure, double? a, double? b, string format, bool ratio = true) =>
            output.WriteLine($"| {figure} | {F(a, format)} | {F(b, format)} | {(ratio ? F(Ratio(b, a), "F2") : "")} |");
        Row("deliveries", off.Delivered, on.Delivered, "F0");
        Row("lost / duplicated / out of order / rejected", off.Lost + off.Duplicated + off.OutOfOrder + off.Rejected,
            on.Lost + on.Duplicated + on.OutOfOrder + on.Rejected, "F0", ratio: false);
        Row("latency p50 ms", off.LatencyP50Ms, on.LatencyP50Ms, "F1");
        Row("latency p99 ms", off.LatencyP99Ms, on.LatencyP99Ms, "F1");
        Row("server CPU s", off.ServerCpuSeconds, on.ServerCpuSeconds, "F2");
        Row("**deliveries per server CPU-second**", off.DeliveriesPerServerCpuSecond, on.DeliveriesPerServerCpuSecond, "F0");
        Row("PostgreSQL CPU s (postmaster and backends)", off.Archive?.PostgresCpuSeconds, on.Archive?.PostgresCpuSeconds, "F2", ratio: false);
        Row("deliveries per (server + PostgreSQL) CPU-second", PerCpu(off), PerCpu(on), "F0");
        Row("load tool CPU s", off.LoadToolCpuSeconds, on.LoadToolCpuSeconds, "F2");
        Row("/metrics scrapes in the window", off.Archive?.Scrapes, on.Archive?.Scrapes, "F0", ratio: false);
        Row("/metrics scrapes that failed", off.Archive?.FailedScrapes, on.Archive?.FailedScrapes, "F0", ratio: false);

        if (on.Archive is not { } a)
        {
            return;
        }

        output.WriteLine();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"archive: {a.ArchivedInWindow} messages in PostgreSQL by the end of the {a.WindowSeconds:F1} s window: {a.ArchivedPerSecond:F0} messages/s, " +
            $"for {F(a.PostgresCpuSeconds, "F2")} s of PostgreSQL CPU ({F(Ratio(a.ArchivedInWindow, a.PostgresCpuSeconds), "F0")} messages per PostgreSQL CPU-second)"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"archive lag (chat_archive_lag_seconds, {a.LagSamples} samples): p50 {F(a.LagP50Seconds, "F3")} s, p99 {F(a.LagP99Seconds, "F3")} s, max {F(a.LagMaxSeconds, "F3")} s"));
        output.WriteLine($"archive complete: {a.ArchivedAfterSettle} of {a.Expected} sent messages in the database {F(a.SettleSeconds, "F1")} s after the window: " +
            (a.Complete == true ? "yes" : "NO"));
        var ratio = Ratio(on.DeliveriesPerServerCpuSecond, off.DeliveriesPerServerCpuSecond);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"target: deliveries per server CPU-second on ÷ off ≥ 0.90: {F(ratio, "F2")}, {(ratio >= 0.90 ? "met" : "MISSED")}; " +
            $"archive lag p99 ≤ 1 s: {F(a.LagP99Seconds, "F3")} s, {(a.LagP99Seconds <= 1 ? "met" : "MISSED")}"));
    }

    /// <summary>
    /// <c>historydb</c>: one server on a fresh Redis and a fresh database, a room seeded with <c>--history-messages</c>
    /// messages in SQL, and <c>history</c> and <c>search</c> timed over a WebSocket (<see cref="HistoryDbRunner"/>).
    /// </summary>
    private static async Task<int> RunHistoryDbAsync(string[] args, Options options, string server, LocalProcesses processes,
        HistoryDatabases databases, TextWriter output, CancellationToken cancellationToken)
    {
        if (options.Urls.Count > 0)
        {
            await Console.Error.WriteLineAsync("historydb starts its own server (on a fresh database): not with --url.");
            return 2;
        }

        await processes.StartRedisAsync(cancellationToken);
        var database = await databases.CreateDatabaseAsync("historydb", cancellationToken);
        var environment = new Dictionary<string, string>(options.ServerEnvironment) { ["History__ConnectionString"] = database };
        await processes.StartServersAsync(1, server, options.InProcess ? null : $"127.0.0.1:{processes.RedisPort}", environment, cancellationToken);
        var report = new LoadTestReport
        {
            Mode = args[0],
            Command = string.Join(' ', args),
            Machine = MachineInfo.Describe(),
            StartedAt = DateTimeOffset.UtcNow,
            Ours = new ScenarioReport { Server = "ChatServer", ServerPath = server },
        };
        var settings = new HistoryDbSettings(processes.Servers[0].Url, database, options.HistoryMessages, options.Samples, options.PauseMs);
        var r = report.Ours.HistoryDb = await new HistoryDbRunner(settings, output).RunAsync(cancellationToken);

        output.WriteLine();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{r.Messages} messages in one room (seeded in {r.SeedSeconds:F1} s, VACUUM ANALYZE {r.AnalyzeSeconds:F1} s); {r.Samples} timed round trips of each, interleaved, {r.PauseMs:F0} ms apart:"));
        output.WriteLine();
        output.WriteLine("| request | matches in the room | round trip median ms | p95 ms | max ms | statement from the tool, median ms | p95 ms | EXPLAIN ANALYZE execution ms | round trip ≤ 10 ms median |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var kind in r.Kinds)
        {
            static string F(double? value) => value is { } v ? v.ToString("F2", CultureInfo.InvariantCulture) : "–";
            var verdict = kind.Plan is null ? "(control)" : kind.Timing.MedianMs <= 10 ? "met" : "MISSED";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {kind.Name} | {kind.Matches} | {kind.Timing.MedianMs:F2} | {kind.Timing.P95Ms:F2} | {kind.Timing.MaxMs:F2} | {F(kind.DatabaseTiming?.MedianMs)} | {F(kind.DatabaseTiming?.P95Ms)} | {F(kind.ExecutionMs)} | {verdict} |"));
        }

        var slowest = r.Kinds.Where(k => k.Plan is not null).MaxBy(k => k.Timing.MedianMs)!;
        output.WriteLine();
        output.WriteLine($"plan of the slowest ({slowest.Name}), EXPLAIN (ANALYZE, BUFFERS) of the server's statement (every plan is in the JSON):");
        output.WriteLine(slowest.Plan);
        await WriteReportAsync(args, options, report, output, cancellationToken);
        return 0;
    }

    /// <summary>
    /// Ours against each of the others (the baseline build, then the peers), one row per figure: ours, then per other
    /// its figure and the ratio, oriented so that above 1 means ours is ahead. A row is left out when ours lacks the
    /// figure; another's cells are "–" when it lacks it.
    /// </summary>
    private static void PrintRatios(TextWriter output, ScenarioReport ours, IReadOnlyList<ScenarioReport> others)
    {
        output.WriteLine();
        output.WriteLine("Ratios of ours against each of the others (> 1: ours ahead):");
        output.WriteLine();
        output.WriteLine($"| figure | {ours.Server} |{string.Concat(others.Select(p => $" {p.Server} | ratio |"))}");
        output.WriteLine($"|---|---:|{string.Concat(others.Select(_ => "---:|---:|"))}");
        void Row(string figure, double? a, Func<ScenarioReport, double?> otherFigure, bool higherIsBetter, string format)
        {
            if (a is not { } x || x <= 0)
            {
                return;
            }

            var cells = others.Select(other => otherFigure(other) is { } y && y > 0
                ? string.Create(CultureInfo.InvariantCulture, $" {y.ToString(format, CultureInfo.InvariantCulture)} | {(higherIsBetter ? x / y : y / x):F2} |")
                : " – | – |").ToList();
            if (cells.All(c => c == " – | – |"))
            {
                return;
            }

            output.WriteLine($"| {figure} | {x.ToString(format, CultureInfo.InvariantCulture)} |{string.Concat(cells)}");
        }

        foreach (var a in ours.Fanout)
        {
            // Matched by rate: a sweep can stop at a different step for each implementation.
            FanoutResult? At(ScenarioReport other) => other.Fanout.FirstOrDefault(b => b.Rate == a.Rate);
            Row($"deliveries per server CPU-second at {a.Rate:F0} msg/s", a.DeliveriesPerServerCpuSecond, p => At(p)?.DeliveriesPerServerCpuSecond, true, "F0");
            Row($"p99 latency ms at {a.Rate:F0} msg/s", a.LatencyP99Ms, p => At(p)?.LatencyP99Ms, false, "F1");
        }

        Row("highest passing rate msg/s", ours.HighestPassingRate, p => p.HighestPassingRate, true, "F0");
        Row("RSS KiB per idle signed-in connection", ours.Idle?.ServerKiBPerConnection, p => p.Idle?.ServerKiBPerConnection, false, "F2");
        Row("at rest: % of a core, idle connections", ours.Idle?.AtRestCpuPercentOfCore, p => p.Idle?.AtRestCpuPercentOfCore, false, "F2");
        Row("cold start ms (median)", Median(ours.ColdStartsMs), p => Median(p.ColdStartsMs), false, "F0");
    }

    private static double? Median(List<double> values) =>
        values.Count == 0 ? null : values.Order().ElementAt(values.Count / 2);

    /// <summary>History cost: one server per <c>HistoryLength</c> (started here, or the one at <c>--url</c>), a room filled to it.</summary>
    private static async Task<int> RunHistoryAsync(string[] args, Options options, string server, LocalProcesses processes, List<Uri> urls,
        TextWriter output, CancellationToken cancellationToken)
    {
        var lengths = options.HistoryLengths.Count > 0 ? options.HistoryLengths : [100, 10_000];
        if (options.StartServers == 0 && (urls.Count == 0 || lengths.Count != 1))
        {
            await Console.Error.WriteLineAsync("history: give --start-servers 1, or one --url and one --history-lengths value (the server's HistoryLength).");
            return 2;
        }

        var report = new LoadTestReport
        {
            Mode = args[0],
            Command = string.Join(' ', args),
            Machine = MachineInfo.Describe(),
            StartedAt = DateTimeOffset.UtcNow,
            Ours = new ScenarioReport { Server = "ChatServer" },
        };
        if (options.StartServers > 0)
        {
            await processes.StartRedisAsync(cancellationToken);
        }

        foreach (var length in lengths)
        {
            var url = urls.FirstOrDefault();
            if (options.StartServers > 0)
            {
                var environment = new Dictionary<string, string>(options.ServerEnvironment) { ["Chat__HistoryLength"] = $"{length}" };
                await processes.StartServersAsync(1, server, $"127.0.0.1:{processes.RedisPort}", environment, cancellationToken);
                url = processes.Servers[^1].Url;
            }

            report.Ours.History.Add(await new HistoryRunner(new HistorySettings(url!, length, options.Samples), output).RunAsync(cancellationToken));
        }

        output.WriteLine();
        output.WriteLine("| kept | newest page of 50: median ms | p95 ms | middle page of 50: median ms | p95 ms | 5-message catch-up: median ms | p95 ms |");
        output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in report.Ours.History)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Kept} | {r.NewestPage.MedianMs:F2} | {r.NewestPage.P95Ms:F2} | {r.MiddlePage.MedianMs:F2} | {r.MiddlePage.P95Ms:F2} | {r.CatchUp.MedianMs:F2} | {r.CatchUp.P95Ms:F2} |"));
        }

        await WriteReportAsync(args, options, report, output, cancellationToken);
        return 0;
    }

    /// <summary>A flood of room names against one server (started here, with Redis unless --in-process, or at --url).</summary>
    private static async Task<int> RunRoomsAsync(string[] args, Options options, string server, LocalProcesses processes, List<Uri> urls,
        List<int> pids, TextWriter output, CancellationToken cancellationToken)
    {
        int? redisPort = null;
        if (options.StartServers > 0)
        {
            await processes.StartRedisAsync(cancellationToken);
            redisPort = options.InProcess ? null : processes.RedisPort;
            await processes.StartServersAsync(1, server, redisPort is { } port ? $"127.0.0.1:{port}" : null, options.ServerEnvironment,
                cancellationToken);
            (urls, pids) = ([processes.Servers[0].Url], [processes.Servers[0].ProcessId]);
        }

        if (urls.Count == 0)
        {
            await Console.Error.WriteLineAsync("rooms: give --start-servers 1 or one --url.");
            return 2;
        }

        var rooms = args.Contains("--rooms") ? options.Rooms : 20_000;
        var report = new LoadTestReport
        {
            Mode = args[0],
            Command = string.Join(' ', args),
            Machine = MachineInfo.Describe(),
            StartedAt = DateTimeOffset.UtcNow,
            Ours = new ScenarioReport { Server = $"ChatServer ({(redisPort is null ? "in-process" : "Redis")})" },
        };
        var settings = new RoomsSettings(urls[0], rooms, options.Clients, options.MessagesPerRoom, redisPort, options.Settle, options.Repeat);
        var r = report.Ours.Rooms = await new RoomsRunner(settings, pids.Count > 0 ? pids[0] : null, output).RunAsync(cancellationToken);

        output.WriteLine();
        output.WriteLine("| when | server RSS MiB | Redis used_memory MiB | Redis keys |");
        output.WriteLine("|---|---:|---:|---:|");
        foreach (var s in r.Samples)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Label} | {s.ServerRssBytes / 1048576.0:F1} | {s.RedisUsedMemoryBytes / 1048576.0:F2} | {s.RedisKeys} |"));
        }

        await WriteReportAsync(args, options, report, output, cancellationToken);
        return 0;
    }

    private static async Task WriteReportAsync(string[] args, Options options, LoadTestReport report, TextWriter output, CancellationToken cancellationToken)
    {
        var file = options.Out ?? $"loadtest-{args[0]}-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json";
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, LoadTestJsonContext.Default.LoadTestReport), cancellationToken);
        await output.WriteLineAsync($"results: {Path.GetFullPath(file)}");
    }

    private static void PrintFanoutTable(TextWriter output, ScenarioReport report)
    {
        output.WriteLine();
        output.WriteLine("| rate msg/s | delivered | deliveries/s | p50 ms | p95 ms | p99 ms | max ms | lost | dup | out of order | rejected | server CPU s | deliveries/server CPU s | tool CPU s |");
        output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in report.Fanout)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Rate:F0} | {r.Delivered} | {r.DeliveriesPerSecond:F0} | {r.LatencyP50Ms:F1} | {r.LatencyP95Ms:F1} | {r.LatencyP99Ms:F1} | {r.LatencyMaxMs:F1} | {r.Lost} | {r.Duplicated} | {r.OutOfOrder} | {r.Rejected} | {r.ServerCpuSeconds:F1} | {r.DeliveriesPerServerCpuSecond:F0} | {r.LoadToolCpuSeconds:F1} |"));
        }

        if (report.HighestPassingRate is { } best)
        {
            output.WriteLine($"highest passing rate: {best:F0} msg/s");
        }

        PrintColdStarts(output, report);
    }

    private static void PrintIdleTable(TextWriter output, ScenarioReport report)
    {
        var r = report.Idle!;
        output.WriteLine();
        output.WriteLine("| connections | rooms | opened | open time s | server RSS before MiB | after MiB | KiB per connection |");
        output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {r.Connections} | {r.Rooms} | {r.Opened} | {r.OpenSeconds:F1} | {r.ServerRssBeforeBytes / 1048576.0:F1} | {r.ServerRssAfterBytes / 1048576.0:F1} | {r.ServerKiBPerConnection:F2} |"));
        if (r.AtRestCpuPercentOfCore is { } rest)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"at rest: {rest:F2} % of a core over {r.AtRestSeconds:F0} s"));
        }

        PrintColdStarts(output, report);
    }

    private static void PrintColdStarts(TextWriter output, ScenarioReport report)
    {
        if (report.ColdStartsMs.Count > 0)
        {
            output.WriteLine($"cold start (process start to /readyz 200): {string.Join(", ", report.ColdStartsMs.Select(ms => $"{ms:F0} ms"))}");
        }
    }
}
