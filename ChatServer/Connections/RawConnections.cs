using ChatServer.Hosting;
using Microsoft.Extensions.Options;

namespace ChatServer.Connections;

/// <summary>
/// The open <see cref="RawChatConnection"/>s of this instance, for what concerns all of them: one keep-alive timer and
/// one shutdown callback, instead of a timer and a cancellation registration per socket (at ten thousand idle sockets
/// that is memory and wake-ups). Every <see cref="ChatOptions.KeepAlive"/> the sweep pings each socket that sent nothing
/// since the last sweep; one that still owes the previous ping's answer is cut off, so a silent peer goes within one
/// to two intervals (as <c>WebSocketOptions.KeepAliveTimeout</c> drops it on the stock path). On SIGTERM every socket
/// gets Close 1012 so clients reconnect elsewhere.
/// </summary>
internal sealed class RawConnections : IDisposable
{
    private readonly Lock _gate = new();
    private readonly ITimer _sweep;
    private readonly CancellationTokenRegistration _stopping;
    private RawChatConnection? _first;

    public RawConnections(IOptions<ChatOptions> options, TimeProvider time, IHostApplicationLifetime lifetime)
    {
        var interval = options.Value.KeepAlive;
        _sweep = time.CreateTimer(_ => Sweep(), null, interval, interval);
        _stopping = lifetime.ApplicationStopping.Register(() => ForEach(c => c.RequestClose(ChatConnection.ServiceRestart)));
    }

    public void Add(RawChatConnection connection)
    {
        lock (_gate)
        {
            connection.Next = _first;
            if (_first is not null)
            {
                _first.Previous = connection;
            }

            _first = connection;
        }
    }

    public void Remove(RawChatConnection connection)
    {
        lock (_gate)
        {
            if (connection.Previous is { } previous)
            {
                previous.Next = connection.Next;
            }
            else if (_first == connection)
            {
                _first = connection.Next;
            }

            if (connection.Next is { } next)
            {
                next.Previous = connection.Previous;
            }

            (connection.Previous, connection.Next) = (null, null);
        }
    }

    private void Sweep() => ForEach(connection =>
    {
        if (connection.ReceivedSinceSweep)
        {
            connection.ReceivedSinceSweep = false;   // alive: no ping needed this round
        }
        else if (connection.PingOutstanding)
        {
            connection.Abort();                      // the last ping went unanswered for a whole interval
        }
        else if (connection.SendPing())
        {
            connection.PingOutstanding = true;
        }
    });

    /// <summary>Runs <paramref name="action"/> on a snapshot (sends may take the connections' own locks).</summary>
    private void ForEach(Action<RawChatConnection> action)
    {
        List<RawChatConnection> all = [];
        lock (_gate)
        {
            for (var connection = _first; connection is not null; connection = connection.Next)
            {
                all.Add(connection);
            }
        }

        foreach (var connection in all)
        {
            action(connection);
        }
    }

    public void Dispose()
    {
        _sweep.Dispose();
        _stopping.Dispose();
    }
}
