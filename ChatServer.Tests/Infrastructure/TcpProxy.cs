using System.Net;
using System.Net.Sockets;

namespace ChatServer.Tests;

/// <summary>
/// One TCP endpoint in front of a switchable backend on 127.0.0.1, as a managed Redis keeps one address across a
/// failover: each accepted connection is piped to the backend current at accept time. <see cref="SwitchTo"/> changes
/// the backend for new connections; <see cref="DropAll"/> resets every open one (both sides).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _sync = new();
    private readonly List<Socket> _open = [];
    private readonly Task _accepting;
    private int _backendPort;

    public TcpProxy(int backendPort)
    {
        _backendPort = backendPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptLoopAsync();
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    public void SwitchTo(int backendPort) => Volatile.Write(ref _backendPort, backendPort);

    /// <summary>Resets every connection open now (RST, both sides); new ones go to the current backend.</summary>
    public void DropAll()
    {
        Socket[] open;
        lock (_sync)
        {
            open = [.. _open];
            _open.Clear();
        }

        foreach (var socket in open)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
            }
            catch (ObjectDisposedException)
            {
                // already closed by its pipe
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        DropAll();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = PipeAsync(client);
        }
    }

    private async Task PipeAsync(Socket client)
    {
        var backend = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        lock (_sync)
        {
            _open.Add(client);
            _open.Add(backend);
        }

        try
        {
            await backend.ConnectAsync(IPAddress.Loopback, Volatile.Read(ref _backendPort), _stop.Token);
            await using var up = new NetworkStream(client, ownsSocket: false);
            await using var down = new NetworkStream(backend, ownsSocket: false);
            await Task.WhenAny(up.CopyToAsync(down, _stop.Token), down.CopyToAsync(up, _stop.Token));
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // refused, reset or dropped: the connection ends, as it would at a real endpoint
        }
        finally
        {
            lock (_sync)
            {
                _open.Remove(client);
                _open.Remove(backend);
            }

            client.Dispose();
            backend.Dispose();
        }
    }
}
