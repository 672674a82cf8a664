namespace ChatServer.LoadTest;

/// <summary>How a peer is started once it is laid out and installed.</summary>
internal enum PeerRuntime
{
    /// <summary><c>node server.js</c> (the Node on the PATH).</summary>
    Node,

    /// <summary><c>node_modules/.bin/bun server.js</c> (Bun installed from npm by the peer's own lock file).</summary>
    Bun,
}

/// <summary>
/// One of the team's performance peers (<c>../shared/peers/&lt;name&gt;</c>): a protocol v1 server that the same
/// scenario runs against right after ours, on the same Redis. <paramref name="Key"/> is its name in <c>--peers</c>.
/// </summary>
internal sealed record PeerServer(string Key, string Name, PeerRuntime Runtime, string Directory)
{
    /// <summary>Every known peer, in the order they run after ours: <c>--peer</c> means all of them.</summary>
    public static IReadOnlyList<string> Keys { get; } = ["node", "bun"];

    public static PeerServer Node(string directory) => new("node", "node-ws-chat", PeerRuntime.Node, directory);

    public static PeerServer Bun(string directory) => new("bun", "bun-chat", PeerRuntime.Bun, directory);
}
