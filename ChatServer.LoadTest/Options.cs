using System.Globalization;

namespace ChatServer.LoadTest;

/// <summary>Command-line options: <c>--name value</c> pairs and a few flags; unknown names are an error.</summary>
internal sealed class Options
{
    public List<string> Urls { get; } = [];

    public int StartServers { get; private set; }

    public int? ServerPid { get; private set; }

    /// <summary>The server to start: a <c>ChatServer.dll</c> (run with <c>dotnet</c>) or a native executable.</summary>
    public string Server { get; private set; } = DefaultServerDll();

    /// <summary>
    /// <c>--baseline-exe</c>/<c>--baseline-dll</c>: an earlier build of ours (a native executable, or a <c>ChatServer.dll</c>
    /// run with <c>dotnet</c>) that runs the same scenario right after ours, started the same way, before the peers; null: none.
    /// </summary>
    public string? Baseline { get; private set; }

    /// <summary>Publish the server as the Dockerfile does (Native AOT) and start that executable.</summary>
    public bool Aot { get; private set; }

    /// <summary>Start our servers on the in-process bus (no Redis); the peer, which needs Redis, keeps it.</summary>
    public bool InProcess { get; private set; }

    /// <summary>coldstart: how many times each implementation is started.</summary>
    public int Runs { get; private set; } = 7;

    public Dictionary<string, string> ServerEnvironment { get; } = [];

    public string? Out { get; private set; }

    public int Rooms { get; private set; } = -1;

    public int Members { get; private set; } = 20;

    public double Rate { get; private set; } = 2500;

    public double Duration { get; private set; } = 20;

    public double Drain { get; private set; } = 5;

    public double Warmup { get; private set; } = 10;

    public bool Sweep { get; private set; }

    /// <summary>
    /// The peers (<see cref="PeerServer.Keys"/>) that run the same scenario right after ours, one after the other, on the
    /// same Redis, with the ratios of ours against each: <c>--peers node,bun</c>; <c>--peer</c> is every peer.
    /// </summary>
    public List<string> PeerKeys { get; } = [];

    /// <summary>The Node peer's folder (<c>--node-dir</c>, or its old name <c>--peer-dir</c>).</summary>
    public string NodePeerDirectory { get; private set; } = DefaultPeerDirectory("node-ws-chat");

    public string BunPeerDirectory { get; private set; } = DefaultPeerDirectory("bun-chat");

    /// <summary>The peers to run after ours, in <c>--peers</c> order (empty: ours alone).</summary>
    public IReadOnlyList<PeerServer> Peers => [.. PeerKeys.Select(key => key switch
    {
        "node" => PeerServer.Node(NodePeerDirectory),
        "bun" => PeerServer.Bun(BunPeerDirectory),
        _ => throw new ArgumentException($"Unknown peer {key}."),
    })];

    public double Step { get; private set; } = 1.25;

    public double MaxRate { get; private set; } = 100_000;

    public double P99BoundMs { get; private set; } = 100;

    public int Connections { get; private set; } = 10_000;

    public int SourceAddresses { get; private set; } = 8;

    public double Settle { get; private set; } = 5;

    /// <summary>idle: after the RSS reading, how long to read the server's CPU with every connection idle (0: not).</summary>
    public double AtRest { get; private set; }

    public List<int> HistoryLengths { get; } = [];

    public int Samples { get; private set; } = 200;

    /// <summary>rooms mode: connections walking through the rooms, and messages sent in each room.</summary>
    public int Clients { get; private set; } = 16;

    public int MessagesPerRoom { get; private set; } = 1;

    public int Repeat { get; private set; } = 1;

    /// <summary>
    /// <c>--history-db</c>: an Npgsql connection string to a PostgreSQL whose user may create databases; the tool makes
    /// a database of its own there for each server it starts (<c>History__ConnectionString</c>) and drops it at the end.
    /// </summary>
    public string? HistoryDb { get; private set; }

    /// <summary><c>--start-postgres</c>: a throwaway PostgreSQL from Debian's binaries, started here and deleted at the end.</summary>
    public bool StartPostgres { get; private set; }

    /// <summary>The servers this tool starts get a history database (<see cref="HistoryDb"/> or <see cref="StartPostgres"/>).</summary>
    public bool HasHistoryDatabase => HistoryDb is not null || StartPostgres;

    /// <summary>
    /// fanout <c>--archive-ab</c>: the same scenario twice in one run, the archive off and then on (a fresh database), with
    /// the ratio of deliveries per server CPU-second, the archive's throughput, PostgreSQL's CPU and the lag.
    /// </summary>
    public bool ArchiveAb { get; private set; }

    /// <summary>historydb: messages seeded into the one room.</summary>
    public int HistoryMessages { get; private set; } = 1_000_000;

    /// <summary>
    /// historydb: the pause before each timed request. A connection that wrote less than <c>Chat__WriteDelay</c> (10 ms)
    /// ago holds its next write for the server's next tick, so requests sent back to back would time that window.
    /// </summary>
    public double PauseMs { get; private set; } = 20;

    public static Options Parse(ReadOnlySpan<string> args)
    {
        var options = new Options();
        var idle = false;
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name == "--sweep")
            {
                options.Sweep = true;
                continue;
            }

            if (name == "--peer")
            {
                options.SetPeers(PeerServer.Keys);
                continue;
            }

            if (name == "--aot")
            {
                options.Aot = true;
                continue;
            }

            if (name == "--in-process")
            {
                options.InProcess = true;
                continue;
            }

            if (name == "--start-postgres")
            {
                options.StartPostgres = true;
                continue;
            }

            if (name == "--archive-ab")
            {
                options.ArchiveAb = true;
                continue;
            }

            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"{name} needs a value.");
            }

            var value = args[++i];
            switch (name)
            {
                case "--url": options.Urls.Add(value); break;
                case "--start-servers": options.StartServers = Int(value); break;
                case "--server-pid": options.ServerPid = Int(value); break;
                case "--server-dll" or "--server-exe": options.Server = Path.GetFullPath(value); break;
                case "--baseline-exe" or "--baseline-dll": options.Baseline = BaselinePath(name, value); break;
                case "--runs": options.Runs = Int(value); break;
                case "--server-env":
                    var (key, setting) = value.Split('=', 2) is [var k, var v] ? (k, v) : throw new ArgumentException("--server-env takes KEY=VALUE.");
                    options.ServerEnvironment[key] = setting;
                    break;
                case "--out": options.Out = value; break;
                case "--rooms": options.Rooms = Int(value); break;
                case "--members": options.Members = Int(value); break;
                case "--rate": options.Rate = Double(value); break;
                case "--duration": options.Duration = Double(value); break;
                case "--drain": options.Drain = Double(value); break;
                case "--warmup": options.Warmup = Double(value); break;
                case "--step": options.Step = Double(value); break;
                case "--max-rate": options.MaxRate = Double(value); break;
                case "--p99-bound-ms": options.P99BoundMs = Double(value); break;
                case "--connections": options.Connections = Int(value); idle = true; break;
                case "--source-addresses": options.SourceAddresses = Int(value); break;
                case "--settle": options.Settle = Double(value); break;
                case "--at-rest": options.AtRest = Double(value); idle = true; break;
                case "--peers": options.SetPeers(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)); break;
                case "--node-dir" or "--peer-dir": options.NodePeerDirectory = Path.GetFullPath(value); break;
                case "--bun-dir": options.BunPeerDirectory = Path.GetFullPath(value); break;
                case "--history-lengths": options.HistoryLengths.AddRange(value.Split(',').Select(Int)); break;
                case "--samples": options.Samples = Int(value); break;
                case "--clients": options.Clients = Int(value); break;
                case "--repeat": options.Repeat = Int(value); break;
                case "--messages-per-room": options.MessagesPerRoom = Int(value); break;
                case "--history-db": options.HistoryDb = value; break;
                case "--history-messages": options.HistoryMessages = Int(value); break;
                case "--pause-ms": options.PauseMs = Double(value); break;
                default: throw new ArgumentException($"Unknown option {name}.");
            }
        }

        if (options.Rooms < 0)
        {
            options.Rooms = idle ? 100 : 10;
        }

        if (options.HistoryDb is not null && options.StartPostgres)
        {
            throw new ArgumentException("Give --history-db or --start-postgres, not both.");
        }

        if (options.ArchiveAb && !options.HasHistoryDatabase)
        {
            throw new ArgumentException("--archive-ab needs a PostgreSQL: --start-postgres or --history-db CONNSTRING.");
        }

        if (options.ArchiveAb && (options.Sweep || options.Baseline is not null || options.PeerKeys.Count > 0))
        {
            throw new ArgumentException("--archive-ab runs ours twice (archive off, then on) at one rate: not with --sweep, a baseline or peers.");
        }

        if (options.HistoryMessages < 1_000)
        {
            throw new ArgumentException("--history-messages must be at least 1000.");
        }

        return options;
    }

    /// <summary>
    /// Checked before anything starts, so a long run of ours does not end in a missing baseline: the file must exist, and
    /// its kind must match the option (a <c>.dll</c> is what is run with <c>dotnet</c>).
    /// </summary>
    private static string BaselinePath(string name, string value)
    {
        var path = Path.GetFullPath(value);
        var managed = path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase);
        if ((name == "--baseline-dll") != managed)
        {
            throw new ArgumentException(managed
                ? $"--baseline-exe takes a native executable; {value} is a .dll (give --baseline-dll)."
                : $"--baseline-dll takes a ChatServer.dll; for a native executable give --baseline-exe.");
        }

        return File.Exists(path) ? path : throw new ArgumentException($"{name}: no file at {path}.");
    }

    private void SetPeers(IEnumerable<string> keys)
    {
        PeerKeys.Clear();
        foreach (var key in keys)
        {
            if (!PeerServer.Keys.Contains(key))
            {
                throw new ArgumentException($"Unknown peer {key} in --peers (known: {string.Join(", ", PeerServer.Keys)}).");
            }

            if (!PeerKeys.Contains(key))
            {
                PeerKeys.Add(key);
            }
        }

        if (PeerKeys.Count == 0)
        {
            throw new ArgumentException("--peers needs at least one peer.");
        }
    }

    /// <summary>The server built beside this tool.</summary>
    private static string DefaultServerDll()
    {
        var configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        return RepositoryRoot() is { } root ? Path.Combine(root, "ChatServer", "bin", configuration, "net10.0", "ChatServer.dll") : "ChatServer.dll";
    }

    /// <summary>The team's shared peers sit beside the repository: <c>../shared/peers/&lt;name&gt;</c>.</summary>
    private static string DefaultPeerDirectory(string name) =>
        Path.GetFullPath(Path.Combine(RepositoryRoot() ?? ".", "..", "shared", "peers", name));

    /// <summary>Walks up to the repository (Chat.sln) from the tool's output folder.</summary>
    internal static string? RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Chat.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }

    private static int Int(string value) => int.Parse(value, CultureInfo.InvariantCulture);

    private static double Double(string value) => double.Parse(value, CultureInfo.InvariantCulture);
}
