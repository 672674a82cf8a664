using System.Runtime.InteropServices;

namespace ChatServer.Connections;

/// <summary>
/// A Linux io_uring used for one thing: many non-blocking <c>send</c>s, each to its own socket, in one system call
/// (<see cref="SendBatch"/>). Every send carries <c>MSG_DONTWAIT</c>, so the kernel never parks one: it is done within
/// <see cref="Submit"/>, with the bytes it took or <c>-EAGAIN</c>, exactly what a non-blocking <c>send</c> returns, and
/// its buffer is free once its completion is read. Owned by the thread that made it (<c>IORING_SETUP_SINGLE_ISSUER</c>).
/// Kernels or sandboxes without io_uring (older than 6.1, seccomp, gVisor) make <see cref="TryCreate"/> return null.
/// </summary>
internal sealed unsafe partial class IoUring : IDisposable
{
    // <linux/io_uring.h>; the system call numbers are the same on every architecture (added after the unified table).
    private const long SysSetup = 425, SysEnter = 426;
    private const uint SetupSubmitAll = 1u << 7, SetupCoopTaskrun = 1u << 8, SetupSingleIssuer = 1u << 12, SetupDeferTaskrun = 1u << 13;
    private const uint FeatSingleMmap = 1u << 0;
    private const uint EnterGetEvents = 1u << 0;
    private const byte OpSend = 26;
    private const uint MsgDontWait = 0x40, MsgNoSignal = 0x4000;
    private const long OffSqRing = 0, OffSqes = 0x10000000;   // the completion ring shares the first (single mmap)
    private const int ProtReadWrite = 0x1 | 0x2, MapShared = 0x01, MapPopulate = 0x08000;

    [StructLayout(LayoutKind.Sequential)]
    private struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        public uint SqHead, SqTail, SqRingMask, SqRingEntries, SqFlags, SqDropped, SqArray, SqResv1;
        public ulong SqUserAddr;
        public uint CqHead, CqTail, CqRingMask, CqRingEntries, CqOverflow, CqCqes, CqFlags, CqResv1;
        public ulong CqUserAddr;
    }

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct Sqe
    {
        [FieldOffset(0)] public byte Opcode;
        [FieldOffset(4)] public int Fd;
        [FieldOffset(16)] public ulong Addr;
        [FieldOffset(24)] public uint Len;
        [FieldOffset(28)] public uint MsgFlags;
        [FieldOffset(32)] public ulong UserData;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Cqe
    {
        public ulong UserData;
        public int Res;
        public uint Flags;
    }

    private readonly int _fd;
    private readonly nint _rings, _sqeMemory;
    private readonly nuint _ringsLength, _sqeLength;
    private readonly uint* _sqTail, _sqMask, _cqHead, _cqTail, _cqMask;
    private readonly Sqe* _sqes;
    private readonly Cqe* _cqes;
    private uint _localTail;   // SQEs written, not yet submitted, end here
    private uint _unsubmitted;
    private bool _disposed;

    /// <summary>How many sends one <see cref="Submit"/> can carry.</summary>
    public int Capacity { get; }

    private IoUring(int fd, in Params p, nint rings, nuint ringsLength, nint sqes, nuint sqeLength)
    {
        (_fd, _rings, _ringsLength, _sqeMemory, _sqeLength) = (fd, rings, ringsLength, sqes, sqeLength);
        var sq = (byte*)rings;
        var cq = (byte*)rings;   // one mapping (IORING_FEAT_SINGLE_MMAP, required below)
        _sqTail = (uint*)(sq + p.SqTail);
        _sqMask = (uint*)(sq + p.SqRingMask);
        _cqHead = (uint*)(cq + p.CqHead);
        _cqTail = (uint*)(cq + p.CqTail);
        _cqMask = (uint*)(cq + p.CqRingMask);
        _cqes = (Cqe*)(cq + p.CqCqes);
        _sqes = (Sqe*)sqes;
        var array = (uint*)(sq + p.SqArray);
        for (uint i = 0; i < p.SqEntries; i++)
        {
            array[i] = i;   // slot i of the ring is SQE i, for good
        }

        _localTail = Volatile.Read(ref *_sqTail);
        Capacity = (int)p.SqEntries;
    }

    /// <summary>A ring for <paramref name="entries"/> sends at a time, or null (with why) where io_uring cannot be used.</summary>
    public static IoUring? TryCreate(uint entries, out string? why)
    {
        why = null;
        if (!OperatingSystem.IsLinux())
        {
            why = "not Linux";
            return null;
        }

        var p = new Params { Flags = SetupSingleIssuer | SetupDeferTaskrun | SetupSubmitAll | SetupCoopTaskrun };
        var fd = (int)Syscall(SysSetup, entries, (nint)(&p), 0, 0, 0, 0);
        if (fd < 0)
        {
            why = $"io_uring_setup failed (errno {Marshal.GetLastPInvokeError()})";
            return null;
        }

        if ((p.Features & FeatSingleMmap) == 0)
        {
            Close(fd);
            why = "kernel without IORING_FEAT_SINGLE_MMAP";
            return null;
        }

        var ringsLength = (nuint)Math.Max(p.SqArray + p.SqEntries * sizeof(uint), p.CqCqes + p.CqEntries * (uint)sizeof(Cqe));
        var rings = Mmap(0, ringsLength, ProtReadWrite, MapShared | MapPopulate, fd, OffSqRing);
        var sqeLength = (nuint)(p.SqEntries * (uint)sizeof(Sqe));
        var sqes = rings == -1 ? -1 : Mmap(0, sqeLength, ProtReadWrite, MapShared | MapPopulate, fd, OffSqes);
        if (rings == -1 || sqes == -1)
        {
            why = $"mmap of the rings failed (errno {Marshal.GetLastPInvokeError()})";
            if (rings != -1)
            {
                _ = Munmap(rings, ringsLength);
            }

            Close(fd);
            return null;
        }

        return new IoUring(fd, p, rings, ringsLength, sqes, sqeLength);
    }

    /// <summary>
    /// Queues a non-blocking send of <paramref name="length"/> bytes at <paramref name="buffer"/> (kept alive and pinned
    /// by the caller until its completion is read) to socket <paramref name="fd"/>. At most <see cref="Capacity"/>
    /// between two <see cref="Submit"/>s.
    /// </summary>
    public void PrepareSend(int fd, byte* buffer, int length, ulong userData)
    {
        if (_unsubmitted >= Capacity)
        {
            throw new InvalidOperationException("The submission ring is full: submit first.");
        }

        var sqe = _sqes + (_localTail & *_sqMask);
        *sqe = default;
        sqe->Opcode = OpSend;
        sqe->Fd = fd;
        sqe->Addr = (ulong)buffer;
        sqe->Len = (uint)length;
        sqe->MsgFlags = MsgDontWait | MsgNoSignal;
        sqe->UserData = userData;
        _localTail++;
        _unsubmitted++;
    }

    /// <summary>
    /// Hands the queued sends to the kernel, which performs each before this returns (none waits: MSG_DONTWAIT) and
    /// posts its completion; read them with <see cref="Reap"/>.
    /// </summary>
    public void Submit()
    {
        Volatile.Write(ref *_sqTail, _localTail);
        while (_unsubmitted > 0)
        {
            var taken = Syscall(SysEnter, _fd, _unsubmitted, 0, 0, 0, 0);
            if (taken < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is 4 or 11 or 16)   // EINTR, EAGAIN, EBUSY: nothing taken; again
                {
                    continue;
                }

                _unsubmitted = 0;
                throw new IOException($"io_uring_enter failed (errno {errno}).");
            }

            _unsubmitted -= (uint)taken;
        }
    }

    /// <summary>
    /// The next completion: the send's user data and its result (bytes sent, or -errno). Only for a send that was
    /// submitted and not yet reaped: waits for it if the kernel has not posted it yet.
    /// </summary>
    public (ulong UserData, int Result) Reap()
    {
        while (true)
        {
            var head = *_cqHead;
            if (head != Volatile.Read(ref *_cqTail))
            {
                var cqe = _cqes + (head & *_cqMask);
                var completion = (cqe->UserData, cqe->Res);
                Volatile.Write(ref *_cqHead, head + 1);
                return completion;
            }

            if (Syscall(SysEnter, _fd, 0, 1, EnterGetEvents, 0, 0) < 0 && Marshal.GetLastPInvokeError() is not (4 or 11 or 16))
            {
                throw new IOException($"io_uring_enter failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _ = Munmap(_sqeMemory, _sqeLength);
        _ = Munmap(_rings, _ringsLength);
        Close(_fd);
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseFd(int fd);

    private static void Close(int fd) => _ = CloseFd(fd);
}
