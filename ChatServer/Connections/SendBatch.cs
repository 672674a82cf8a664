using System.Net.Sockets;
using System.Runtime.CompilerServices;
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
    private long _sent, _short;

    /// <summary>A socket's frames in this batch: the first, and those appended behind it (joined once, when sent).</summary>
    private record struct Entry(RawChatConnection Connection, SafeHandle Handle, ReadOnlyMemory<byte> Wire)
    {
        public List<ReadOnlyMemory<byte>>? More;
        public int Length = Wire.Length;
        public nint Staged;   // where its bytes are in the staging buffer while sent
    }

    private byte* _stage = (byte*)NativeMemory.Alloc(StageBytes);
    private nuint _stageBytes = StageBytes;
    private const int StageBytes = 64 * 1024;   // grows only for a single entry bigger than this

    private const uint Entries = 256;   // sends per system call; a bigger batch takes several

    private SendBatch(IoUring ring) => _ring = ring;

    /// <summary>Frames (or joined frames) sent through this batch so far.</summary>
    public long Sent => Volatile.Read(ref _sent);

    /// <summary>Of those, how many the socket took only in part or not at all (the rest went out asynchronously).</summary>
    public long Short => Volatile.Read(ref _short);

    /// <summary>Nothing added since the last send.</summary>
    public bool IsEmpty => _entries.Count == 0;

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
    /// own lock and marks its output busy): its index for <see cref="TryAppend"/>, or -1 when the socket is already gone
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
    /// one send (the sender's ack behind its own message, both from one read). False when that would make the send
    /// longer than <see cref="MaxJoinedBytes"/>: the connection queues the frame as behind any write in progress.
    /// </summary>
    public bool TryAppend(int index, ReadOnlyMemory<byte> wire)
    {
        ref var entry = ref CollectionsMarshal.AsSpan(_entries)[index];
        if (entry.Length + wire.Length > MaxJoinedBytes)
        {
            return false;
        }

        (entry.More ??= []).Add(wire);
        entry.Length += wire.Length;
        return true;
    }

    /// <summary>The most one socket's frames are joined into for one send (a burst of joins can bring hundreds).</summary>
    public const int MaxJoinedBytes = 64 * 1024;

    private void Send()
    {
        t_open = null;   // what the connections do with their results writes directly
        var entries = CollectionsMarshal.AsSpan(_entries);
        Span<int> results = stackalloc int[_ring.Capacity];
        for (var start = 0; start < entries.Length;)
        {
            var count = Stage(entries[start..]);
            try
            {
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
                results[..count].Fill(int.MinValue);
            }

            for (var i = 0; i < count; i++)
            {
                ref var entry = ref entries[start + i];
                entry.Handle.DangerousRelease();
                var result = results[i];
                if (result != entry.Length)
                {
                    Volatile.Write(ref _short, _short + 1);
                }

                const int WouldBlock = -11;   // EAGAIN: the socket took nothing, which is not an error
                var failed = result < 0 && result != WouldBlock;
                entry.Connection.Written(failed, failed || result == entry.Length ? default : Rest(entry, Math.Max(result, 0)));
            }

            start += count;
        }

        Volatile.Write(ref _sent, _sent + entries.Length);
        _entries.Clear();   // its capacity stays: the largest batch's list is made once, not again for every read
    }

    /// <summary>
    /// Between two messages of one read: sends what the open batch holds once it is large, so a burst (a read full of
    /// joins in a big room) neither grows the list without bound nor waits for the whole read.
    /// </summary>
    public void SendIfLarge()
    {
        if (t_open == this && _entries.Count >= LargeBatch)
        {
            Send();
            t_open = this;
        }
    }

    private const int LargeBatch = 1024;

    /// <summary>
    /// Copies the first entries' bytes into the native staging buffer (the kernel reads them from there, so nothing
    /// managed is pinned) and queues their sends: as many as the ring and the buffer take, at least one. A room's frame,
    /// the same bytes for every member in a row, is copied once.
    /// </summary>
    private int Stage(Span<Entry> entries)
    {
        nuint used = 0;
        var count = 0;
        for (; count < entries.Length && count < _ring.Capacity; count++)
        {
            ref var entry = ref entries[count];
            if (count > 0 && entry.More is null && entries[count - 1].More is null && SameBytes(entry.Wire, entries[count - 1].Wire))
            {
                entry.Staged = entries[count - 1].Staged;
            }
            else
            {
                if (used + (nuint)entry.Length > _stageBytes)
                {
                    if (count > 0)
                    {
                        break;   // the rest in the next submission
                    }

                    _stage = (byte*)NativeMemory.Realloc(_stage, (nuint)entry.Length);
                    _stageBytes = (nuint)entry.Length;
                }

                var at = new Span<byte>(_stage + used, entry.Length);
                entry.Wire.Span.CopyTo(at);
                if (entry.More is { } more)
                {
                    var offset = entry.Wire.Length;
                    foreach (var frame in more)
                    {
                        frame.Span.CopyTo(at[offset..]);
                        offset += frame.Length;
                    }
                }

                entry.Staged = (nint)(_stage + used);
                used += (nuint)entry.Length;
            }

            _ring.PrepareSend((int)entry.Handle.DangerousGetHandle(), (byte*)entry.Staged, entry.Length, (ulong)count);
        }

        return count;
    }

    private static bool SameBytes(ReadOnlyMemory<byte> a, ReadOnlyMemory<byte> b) =>
        a.Length == b.Length && Unsafe.AreSame(ref MemoryMarshal.GetReference(a.Span), ref MemoryMarshal.GetReference(b.Span));

    /// <summary>What the socket did not take of an entry that it took <paramref name="taken"/> bytes of: written later.</summary>
    private static ReadOnlyMemory<byte> Rest(in Entry entry, int taken) =>
        entry.More is null
            ? entry.Wire[taken..]
            : new ReadOnlySpan<byte>((byte*)entry.Staged + taken, entry.Length - taken).ToArray();   // joined frames

    public void Dispose()
    {
        _ring.Dispose();
        NativeMemory.Free(_stage);
        _stage = null;
    }

    /// <summary>The open batch; disposing it sends what was added.</summary>
    public readonly struct Scope(SendBatch? batch) : IDisposable
    {
        /// <summary>A batch was opened (and is not sent yet, unless disposed).</summary>
        public bool IsOpen => batch is not null;

        public void Dispose()
        {
            if (batch is not null)
            {
                batch.Send();
            }
        }
    }
}
