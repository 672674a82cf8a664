using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ChatServer.Connections;

/// <summary>
/// The frames one thread writes to its members' sockets while handling one read from Redis, sent together: one
/// <c>io_uring_enter</c> instead of a <c>send</c> system call per member (<see cref="IoUring"/>). Each send is still
/// non-blocking and its own (one socket each, MSG_DONTWAIT), so what a member gets is exactly what a <c>send</c> would
/// have given it; only the system calls are fewer, and a thread that wakes a reader on this machine (a member on
/// loopback) is preempted at most once per batch instead of once per member.
/// <para>
/// While a batch is open on a thread (<see cref="Open"/>), <see cref="RawChatConnection"/> hands a frame it would
/// write at once to <see cref="TryAdd"/> instead, and owns no output until the batch is sent: frames for the same
/// socket meanwhile queue behind it as behind any write in progress. <see cref="Dispose"/> of the scope sends
/// everything and hands each connection its result (<see cref="RawChatConnection.Written"/>): the rest of a frame the
/// socket could not take goes out asynchronously as before.
/// </para>
/// </summary>
internal sealed unsafe class SendBatch : IDisposable
{
    [ThreadStatic]
    private static SendBatch? t_open;   // the batch open on this thread

    private readonly IoUring _ring;
    private readonly List<Entry> _entries = [];
    private bool _broken;

    private readonly record struct Entry(RawChatConnection Connection, SafeHandle Handle, ReadOnlyMemory<byte> Wire);

    private const uint Entries = 256;   // sends per system call; a bigger batch takes several

    private SendBatch(IoUring ring) => _ring = ring;

    private long _sent, _short;

    /// <summary>Frames (or joined frames) sent through this batch so far.</summary>
    public long Sent => Volatile.Read(ref _sent);

    /// <summary>Of those, how many the socket took only in part or not at all (the rest went out asynchronously).</summary>
    public long Short => Volatile.Read(ref _short);

    /// <summary>The batch open on this thread, if any.</summary>
    public static SendBatch? Current => t_open;

    /// <summary>A batch for the calling thread (only it may use it), or null with why io_uring cannot be used here.</summary>
    public static SendBatch? Create(out string? why) =>
        IoUring.TryCreate(Entries, out why) is { } ring ? new SendBatch(ring) : null;

    /// <summary>Opens the batch on this thread until the returned scope is disposed (which sends it).</summary>
    public Scope Open()
    {
        if (_broken || t_open is not null)
        {
            return default;
        }

        t_open = this;
        return new Scope(this);
    }

    /// <summary>
    /// Takes <paramref name="wire"/> for <paramref name="connection"/>'s socket into the batch (the connection holds its
    /// own lock and marks its output busy): its index for <see cref="Append"/>, or -1 when the socket is already gone
    /// (the caller writes as usual).
    /// </summary>
    public int TryAdd(RawChatConnection connection, Socket socket, ReadOnlyMemory<byte> wire)
    {
        var handle = socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);   // the descriptor cannot be closed and reused before the send
        }
        catch (ObjectDisposedException)
        {
        }

        if (!added)
        {
            return -1;
        }

        _entries.Add(new Entry(connection, handle, wire));
        return _entries.Count - 1;
    }

    /// <summary>
    /// Another frame for the socket of entry <paramref name="index"/>, right behind the one(s) it holds: they go out in
    /// one send (the sender's ack behind its own message, both from one read).
    /// </summary>
    public void Append(int index, ReadOnlyMemory<byte> wire)
    {
        var entry = _entries[index];
        var joined = new byte[entry.Wire.Length + wire.Length];
        entry.Wire.CopyTo(joined);
        wire.CopyTo(joined.AsMemory(entry.Wire.Length));
        _entries[index] = entry with { Wire = joined };
    }

    private void Send()
    {
        t_open = null;   // what the connections do with their results writes directly
        var entries = _entries;
        Span<int> all = stackalloc int[_ring.Capacity];
        for (var start = 0; start < entries.Count; start += _ring.Capacity)
        {
            var count = Math.Min(_ring.Capacity, entries.Count - start);
            var results = all[..count];
            var pins = ArrayPool<MemoryHandle>.Shared.Rent(count);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var entry = entries[start + i];
                    pins[i] = entry.Wire.Pin();   // until its completion is read
                    _ring.PrepareSend((int)entry.Handle.DangerousGetHandle(), (byte*)pins[i].Pointer, entry.Wire.Length, (ulong)i);
                }

                _ring.Submit();
                for (var i = 0; i < count; i++)
                {
                    var (index, result) = _ring.Reap();
                    results[(int)index] = result;
                }
            }
            catch (IOException)
            {
                // The ring itself failed (never seen): whether these bytes went out is unknown, so their connections
                // cannot go on (a frame twice or half would corrupt the stream). This thread writes directly from now.
                _broken = true;
                results.Fill(int.MinValue);
            }

            for (var i = 0; i < count; i++)
            {
                pins[i].Dispose();
            }

            ArrayPool<MemoryHandle>.Shared.Return(pins, clearArray: true);
            for (var i = 0; i < count; i++)
            {
                var entry = entries[start + i];
                entry.Handle.DangerousRelease();
                if (results[i] != entry.Wire.Length)
                {
                    Volatile.Write(ref _short, _short + 1);
                }

                entry.Connection.Written(entry.Wire, results[i]);
            }
        }

        Volatile.Write(ref _sent, _sent + entries.Count);
        entries.Clear();
        if (entries.Capacity > 4096)
        {
            entries.Capacity = 256;   // one huge room's batch does not keep its list
        }
    }

    public void Dispose() => _ring.Dispose();

    /// <summary>The open batch; disposing it sends what was added.</summary>
    public readonly struct Scope(SendBatch? batch) : IDisposable
    {
        public void Dispose()
        {
            if (batch is not null)
            {
                batch.Send();
            }
        }
    }
}
