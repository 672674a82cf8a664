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
        Usage: dotnet run -c Release --project ChatServer.LoadTest -- <fanout|idle|history|coldstart|rooms> [options]

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
        fanout:
          --rooms R (10) --members M (20) --rate MSG_PER_S (2500) --duration S (20) --drain S (5)
          --warmup S (10)       an unmeasured run at the first rate first, so JIT tiering is not billed to the figures
          --sweep               raise the rate by --step (1.25x) until p99 > --p99-bound-ms (100) or anything is lost
          --max-rate MSG_PER_S  stop a sweep here (100000)
        idle:
          --connections N (10000) --rooms K (100) --source-addresses A (8) --settle S (5)
          --at-rest S (0)       then read the server's CPU for S s with every connection idle (% of a core)
        history:
          --history-lengths L1,L2 (100,10000)  with --start-servers 1: one server per length, Chat__HistoryLength=L,
                                each room filled to L; with --url: one length, the server's own HistoryLength
          --samples N (200)     timed round trips of each read: newest page of 50, a middle page, a 5-message catch-up
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
        if (args.Length == 0 || args[0] is not ("fanout" or "idle" or "history" or "coldstart" or "rooms"))
        {
            await Console.Error.WriteLineAsync(Usage);
            return 2;
        }

        var mode = args[0];
        var options = Options.Parse(args.AsSpan(1));
        if (options.Baseline is not null && mode is ("history" or "rooms"))
        {
            await Console.Error.WriteLineAsync("--baseline-exe/--baseline-dll: fanout, idle and coldstart only (history and rooms run ours alone).");
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        var output = Console.Out;
        await using var processes = new LocalProcesses(output);
        var server = options.Aot ? await NativeBuild.PublishAsync(output, cancel.Token) : options.Server;
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
        TextWriter output, CancellationToken cancellationToken)
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
                var result = await new FanoutRunner(settings, pids, output).RunAsync(cancellationToken);
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
