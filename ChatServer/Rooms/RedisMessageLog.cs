using System.Diagnostics;
using System.Runtime.CompilerServices;
using ChatServer.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ChatServer.Rooms;

/// <summary>
/// The log on Redis: a hash (<c>seq</c>, <c>epoch</c>) and a capped list per room. One script numbers, stores, trims
/// and publishes each message, so history order, <c>seq</c> order and channel order agree on every instance however
/// many senders write at once. The list holds contiguous <c>seq</c> values ending at the head, so a range of seqs is a
/// range of list indexes: reads compute it and <c>LRANGE</c> only that, in the script that reads the head.
/// </summary>
internal sealed class RedisMessageLog(RedisConnection connection, RoomKeys keys, IOptions<ChatOptions> options, ChatMetrics metrics)
    : IMessageLog
{
    // How both scripts start: the room's epoch into the local `epoch`, a new one (ARGV[candidate]) for a room without
    // one (first use, Redis lost its data, its keys expired). Then the failover guard: ARGV[seen] and
    // ARGV[seen + 1] are the epoch and seq this instance has seen ("" and 0 for none). The same epoch with a lower
    // stored head means the store went backward (a replica promoted before it had the last writes): start a new epoch,
    // empty, so no (epoch, seq) is handed out twice.
    private static string Epoch(int candidate, int seen) => $$"""
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then
          epoch = ARGV[{{candidate}}]
          redis.call('HSET', KEYS[1], 'epoch', epoch)
        end
        -- failover guard: begin
        if epoch == ARGV[{{seen}}] and tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[{{seen + 1}}]) then
          epoch = ARGV[{{candidate}}]
          redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
          redis.call('DEL', KEYS[2])
        end
        -- failover guard: end
        """;

    // Retention (PROTOCOL.md "Retention"), shared by both scripts: the room's meta hash (seq, epoch) and
    // history list get the same expiry, the history TTL in ms from the local `ttl`, so they expire together and the
    // room starts over with a new epoch. 0 keeps them: PERSIST undoes the expiry an earlier TTL setting gave them.
    private const string ExpireRoomKeys = """
        if ttl > 0 then
          redis.call('PEXPIRE', KEYS[1], ttl)
          redis.call('PEXPIRE', KEYS[2], ttl)
        else
          redis.call('PERSIST', KEYS[1])
          redis.call('PERSIST', KEYS[2])
        end
        """;

    // KEYS: meta hash, history list, key hash, key times. ARGV: open message JSON, history length, epoch candidate,
    // channel, PUBLISH or SPUBLISH, then the failover guard's seen epoch and seq, then the history TTL in ms
    // (retention), then the message's key id ("" for none), the idempotency window in ms and the most keys a room
    // keeps. One script text for both modes keeps one cached SHA. The channel is not a key, but on a Cluster it has the
    // room's hash tag, so SPUBLISH from the script stays in the slot the keys routed it to.
    // A key already recorded in this epoch within the window answers {seq, epoch, 1} and stores nothing; the record
    // and the message are written in this one step, so two copies racing on two instances store one message. Expired
    // keys are forgotten a bounded number at a time; beyond the cap the oldest go first.
    private static readonly string AppendScript = $$"""
        {{Epoch(candidate: 3, seen: 6)}}
        local keyid = ARGV[9]
        local now = 0
        if keyid ~= '' then
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
          local window = tonumber(ARGV[10])
          local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - window, 'LIMIT', 0, 100)
          if #expired > 0 then
            redis.call('HDEL', KEYS[3], unpack(expired))
            redis.call('ZREM', KEYS[4], unpack(expired))
          end
          local prior = redis.call('HGET', KEYS[3], keyid)
          if prior then
            local space = string.find(prior, ' ', 1, true)
            if string.sub(prior, space + 1) == epoch then
              return {tonumber(string.sub(prior, 1, space - 1)), epoch, 1}
            end
          end
        end
        local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
        local entry = {{RoomEntry.LuaEncodeMessage}}
        redis.call('RPUSH', KEYS[2], entry)
        redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
        redis.call(ARGV[5], ARGV[4], entry)
        -- retention: ARGV[8]
        local ttl = tonumber(ARGV[8])
        {{ExpireRoomKeys}}
        if keyid ~= '' then
          redis.call('HSET', KEYS[3], keyid, seq .. ' ' .. epoch)
          redis.call('ZADD', KEYS[4], now, keyid)
          local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[11])
          if over > 0 then
            local oldest = redis.call('ZRANGE', KEYS[4], 0, math.min(over, 1000) - 1)
            redis.call('HDEL', KEYS[3], unpack(oldest))
            redis.call('ZREM', KEYS[4], unpack(oldest))
          end
          redis.call('PEXPIRE', KEYS[3], ARGV[10])
          redis.call('PEXPIRE', KEYS[4], ARGV[10])
        end
        return {seq, epoch, 0}
        """;

    // KEYS: meta hash, history list. ARGV: epoch candidate, read (Latest|Before|After), position, count, then the
    // failover guard's seen epoch and seq, then the history TTL in ms (retention). A room read for the first time (or
    // after Redis lost its data, or after its keys expired) gets its epoch here, so an ack can name it before any
    // message exists; a read (a join, a history page) renews the room's expiry as a message does. The range arithmetic
    // is LogSlice.Range's; the list's first index holds seq `first`.
    private static readonly string ReadScript = $$"""
        {{Epoch(candidate: 1, seen: 5)}}
        local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
        local first = head - redis.call('LLEN', KEYS[2]) + 1
        local position, count = tonumber(ARGV[3]), tonumber(ARGV[4])
        local from, to
        if ARGV[2] == 'After' then
          from = math.max(first, position + 1)
          to = math.min(head, from + count - 1)
        else
          to = head
          if ARGV[2] == 'Before' then to = math.min(head, position - 1) end
          from = math.max(first, to - count + 1)
        end
        local items = {}
        if count > 0 and to >= from then
          items = redis.call('LRANGE', KEYS[2], from - first, to - first)
        end
        -- retention: ARGV[7]
        local ttl = tonumber(ARGV[7])
        {{ExpireRoomKeys}}
        return {epoch, head, first, items}
        """;

    // KEYS: meta hash, history list. ARGV: epoch, seq, the entry expected at that place, its tombstone entry, channel,
    // PUBLISH or SPUBLISH, the announcement. Compare and set: a message trimmed, or replaced meanwhile, is left alone.
    private const string ReplaceScript = """
        if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
        local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
        local first = head - redis.call('LLEN', KEYS[2]) + 1
        local seq = tonumber(ARGV[2])
        if seq < first or seq > head then return 0 end
        if redis.call('LINDEX', KEYS[2], seq - first) ~= ARGV[3] then return 0 end
        redis.call('LSET', KEYS[2], seq - first, ARGV[4])
        redis.call(ARGV[6], ARGV[5], ARGV[7])
        return 1
        """;

    private readonly int _historyLength = options.Value.HistoryLength;
    private readonly long _ttlMs = (long)options.Value.HistoryTtl.TotalMilliseconds;
    private readonly long _keyWindowMs = (long)options.Value.IdempotencyWindow.TotalMilliseconds;
    private readonly int _keysPerRoom = options.Value.IdempotencyKeysPerRoom;

    public bool IsAvailable => connection.IsConnected;

    public async Task<Appended> AppendAsync(string room, byte[] openJson, LogMark? seen = null, MessageKey? key = null)
    {
        var started = Stopwatch.GetTimestamp();
        var candidate = Epochs.New();
        var result = await RedisCalls.Run(() => connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(AppendScript,
            [keys.Meta(room), keys.History(room), keys.MessageKeys(room), keys.MessageKeyTimes(room)],
            [openJson, _historyLength, candidate, keys.Channel(room).ToString(), keys.PublishCommand, seen?.Epoch ?? "", seen?.Seq ?? 0, _ttlMs,
                key?.Id ?? "", _keyWindowMs, _keysPerRoom]));
        metrics.ScriptCompleted(started);
        var parts = (RedisResult[])result!;
        return new((long)parts[0], (string)parts[1]!, (long)parts[2] == 1);
    }

    public Task<LogSlice> ReadLatestAsync(string room, int count, CancellationToken cancellationToken, LogMark? seen = null) =>
        ReadAsync(room, LogRead.Latest, 0, count, cancellationToken, seen);

    public Task<LogSlice> ReadBeforeAsync(string room, long before, int count, CancellationToken cancellationToken) =>
        ReadAsync(room, LogRead.Before, before, count, cancellationToken);

    public Task<LogSlice> ReadAfterAsync(string room, long after, long count, CancellationToken cancellationToken, LogMark? seen = null) =>
        ReadAsync(room, LogRead.After, after, count, cancellationToken, seen);

    public async Task<bool> ReplaceAsync(string room, RoomEntry original, byte[] tombstoneEntry, byte[] announcement)
    {
        var originalEntry = RoomEntry.EncodeStored(original.Seq, original.Epoch, original.Json.Span);
        var result = await RedisCalls.Run(() => connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(ReplaceScript,
            [keys.Meta(room), keys.History(room)],
            [original.Epoch, original.Seq, originalEntry, tombstoneEntry, keys.Channel(room).ToString(), keys.PublishCommand, announcement]));
        return (long)result == 1;
    }

    public async IAsyncEnumerable<RoomSpan> RoomsAsync([EnumeratorCancellation] CancellationToken cancellationToken, bool complete = false)
    {
        var multiplexer = connection.Multiplexer;
        foreach (var server in multiplexer.GetServers())
        {
            if (complete && !server.IsReplica && !server.IsConnected)
            {
                throw new StoreUnavailableException(StoreUnavailableException.ClientError);
            }

            if (server.IsReplica || !server.IsConnected)
            {
                continue;   // on a Cluster, each primary holds its slots' rooms
            }

            var rooms = new List<string>(256);
            await foreach (var key in server.KeysAsync(pattern: keys.MetaPattern, pageSize: 500).WithCancellation(cancellationToken))
            {
                if (keys.RoomOfMeta(key.ToString()) is { } room)
                {
                    rooms.Add(room);
                }

                if (rooms.Count == rooms.Capacity)
                {
                    foreach (var span in await SpansAsync(rooms))
                    {
                        yield return span;
                    }

                    rooms.Clear();
                }
            }

            foreach (var span in await SpansAsync(rooms))
            {
                yield return span;
            }
        }
    }

    /// <summary>Each room's epoch, head and kept length, the commands pipelined on the multiplexer.</summary>
    private async Task<List<RoomSpan>> SpansAsync(List<string> rooms)
    {
        var database = connection.Multiplexer.GetDatabase();
        var reads = rooms.Select(room => (room, Meta: database.HashGetAsync(keys.Meta(room), [(RedisValue)"epoch", (RedisValue)"seq"]),
            Length: database.ListLengthAsync(keys.History(room)))).ToList();
        await Task.WhenAll(reads.SelectMany(r => new Task[] { r.Meta, r.Length }));
        var spans = new List<RoomSpan>(reads.Count);
        foreach (var (room, meta, length) in reads)
        {
            var values = meta.Result;
            if (!values[0].IsNull)
            {
                var head = values[1].IsNull ? 0 : (long)values[1];
                spans.Add(new RoomSpan(room, values[0].ToString(), head - length.Result + 1, head));
            }
        }

        return spans;
    }

    public async Task<IReadOnlyList<RoomEntry>> PeekAsync(string room, CancellationToken cancellationToken)
    {
        var stored = await RedisCalls.Run(() => connection.Multiplexer.GetDatabase().ListRangeAsync(keys.History(room)).WaitAsync(cancellationToken));
        var messages = new List<RoomEntry>(stored.Length);
        foreach (var item in stored)
        {
            if (RoomEntry.TryParse((byte[])item!, out var entry) && entry.Kind == RoomEntryKind.Message)
            {
                messages.Add(entry);
            }
        }

        return messages;
    }

    private async Task<LogSlice> ReadAsync(string room, LogRead read, long position, long count, CancellationToken cancellationToken,
        LogMark? seen = null)
    {
        // Lua numbers are doubles: keep positions well inside 2^53.
        position = Math.Clamp(position, 0, 1L << 50);
        var result = await RedisCalls.Run(() => connection.Multiplexer.GetDatabase().ScriptEvaluateAsync(ReadScript,
            [keys.Meta(room), keys.History(room)], [Epochs.New(), read.ToString(), position, count, seen?.Epoch ?? "", seen?.Seq ?? 0, _ttlMs])
            .WaitAsync(cancellationToken));
        var parts = (RedisResult[])result!;
        var stored = (RedisResult[])parts[3]!;
        var messages = new List<RoomEntry>(stored.Length);
        foreach (var item in stored)
        {
            if (RoomEntry.TryParse((byte[])item!, out var entry) && entry.Kind == RoomEntryKind.Message)
            {
                messages.Add(entry);
            }
        }

        return new LogSlice((string)parts[0]!, (long)parts[1], (long)parts[2], messages);
    }
}
