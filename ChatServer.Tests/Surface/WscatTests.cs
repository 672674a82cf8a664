using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;

namespace ChatServer.Tests.Surface;

/// <summary>
/// The terminal path the README shows: the real <c>wscat</c> from npm (installed into <c>tools/</c> by the test
/// command), run non-interactively with <c>-x</c> against a running host, and what it prints checked line by line.
/// </summary>
public sealed class WscatTests
{
    private static string? WscatPath =>
        new[] { Environment.GetEnvironmentVariable("CHAT_TEST_WSCAT"), RepositoryFiles.PathOf("tools/node_modules/.bin/wscat") }
            .FirstOrDefault(File.Exists);

    [Test, CancelAfter(60_000)]
    public async Task Wscat_signs_in_sends_gets_an_error_ack_sees_notifications_and_recovers_with_updateSocketId(CancellationToken cancellationToken)
    {
        RepositoryFiles.RequireTool(WscatPath, "wscat", "run npm ci --prefix tools");
        await using var hostA = new ChatHost(TestRedis.ConnectionString);
        await using var hostB = new ChatHost(TestRedis.ConnectionString);
        var room = TestNames.Room("wscat");

        using var bob = Wscat.Start(hostB.WebSocketUri, [Json(new { type = "signin", id = 1, user = "bob", room })]);
        var bobAck = await bob.ExpectAsync(f => f.IsAck(1), cancellationToken);
        Assert.That(bobAck.Ok, Is.True, bobAck.Raw);

        using (var alice = Wscat.Start(hostA.WebSocketUri,
        [
            Json(new { type = "signin", id = 1, user = "alice", room }),
            Json(new { type = "sendMessage", id = 2, text = "hello from a terminal" }),
            Json(new { type = "sendMessage", id = 3, text = "" }),
        ]))
        {
            // The message and the acks after it may be printed in any order (PROTOCOL.md).
            var printed = await alice.ExpectAllAsync([f => f.IsAck(1), f => f.Type == "message", f => f.IsAck(3)], cancellationToken);
            var (signedIn, message, rejected) = (printed[0], printed[1], printed[2]);
            Assert.That((signedIn.Ok, signedIn.Room, signedIn.HasMessages), Is.EqualTo((true, room, true)), signedIn.Raw);
            Assert.That((message.User, message.Text, message.Seq), Is.EqualTo(("alice", "hello from a terminal", 1L)), message.Raw);
            Assert.That((rejected.Ok, rejected.Error), Is.EqualTo((false, "Field 'text' must be 1 to 2000 characters (it has 0).")), rejected.Raw);

            var joined = await bob.ExpectAsync(f => f.Type == "notification", cancellationToken);
            var relayed = await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
            Assert.That(joined.Description, Is.EqualTo("alice just entered the room"));
            Assert.That(relayed.Raw, Is.EqualTo(message.Raw), "both instances print the same stored bytes");

            // The epoch for updateSocketId comes from what wscat printed, as a person would copy it.
            using var back = Wscat.Start(hostB.WebSocketUri,
                [Json(new { type = "updateSocketId", id = 1, user = "alice", room, since = 0, epoch = signedIn.Epoch })]);
            var recovered = await back.ExpectAsync(f => f.IsAck(1), cancellationToken);
            Assert.That((recovered.Ok, recovered.Recovered, recovered.Epoch), Is.EqualTo((true, (bool?)true, signedIn.Epoch)), recovered.Raw);
            Assert.That(recovered.Messages.Select(m => m.Text), Is.EqualTo(new[] { "hello from a terminal" }));
        }

        var left = await bob.ExpectAsync(f => f.Type == "notification" && f.Title == "Someone just left", cancellationToken);
        Assert.That(left.Description, Is.EqualTo("alice just left the room"));
    }

    [Test, CancelAfter(60_000)]
    public async Task Wscat_resends_with_the_same_key_and_gets_the_first_seq_marked_duplicate(CancellationToken cancellationToken)
    {
        RepositoryFiles.RequireTool(WscatPath, "wscat", "run npm ci --prefix tools");
        await using var host = new ChatHost(TestRedis.ConnectionString);
        var room = TestNames.Room("wscat");

        using var alice = Wscat.Start(host.WebSocketUri,
        [
            Json(new { type = "signin", id = 1, user = "alice", room }),
            Json(new { type = "sendMessage", id = 2, text = "hello", key = "9b1c2f" }),
            Json(new { type = "sendMessage", id = 3, text = "hello", key = "9b1c2f" }),
            Json(new { type = "sendMessage", id = 4, text = "after" }),
        ]);

        var printed = await alice.ExpectAllAsync([f => f.IsAck(2), f => f.IsAck(3), f => f.IsAck(4)], cancellationToken);
        Assert.That(printed[0].Raw, Is.EqualTo("""{"type":"ack","id":2,"ok":true,"seq":1}"""));
        Assert.That(printed[1].Raw, Is.EqualTo("""{"type":"ack","id":3,"ok":true,"seq":1,"duplicate":true}"""));
        Assert.That(printed[2].Seq, Is.EqualTo(2), "the resend stored nothing");
    }

    private static string Json(object frame) => JsonSerializer.Serialize(frame);

    /// <summary>
    /// One <c>wscat -c URL -x FRAME... -w -1</c>: it sends the frames on connect and stays connected. Its standard
    /// input stays open until disposal, because wscat 6 exits at once when stdin closes. With stdout not a terminal it
    /// prints each incoming frame on its own line, which is what the tests read.
    /// </summary>
    private sealed class Wscat : IDisposable
    {
        private readonly Process _process;
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly List<string> _stderr = [];

        private Wscat(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    _lines.Writer.TryComplete();
                }
                else if (e.Data.Length > 0)
                {
                    _lines.Writer.TryWrite(e.Data);
                }
            };
            _process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (_stderr)
                    {
                        _stderr.Add(e.Data);
                    }
                }
            };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public static Wscat Start(Uri uri, IEnumerable<string> frames)
        {
            var info = new ProcessStartInfo(WscatPath!)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add(uri.ToString());
            foreach (var frame in frames)
            {
                info.ArgumentList.Add("-x");
                info.ArgumentList.Add(frame);
            }

            info.ArgumentList.Add("-w");
            info.ArgumentList.Add("-1");
            return new Wscat(Process.Start(info) ?? throw new InvalidOperationException("wscat did not start."));
        }

        /// <summary>Reads printed lines until each predicate has matched one; returns the matches in predicate order.</summary>
        public async Task<Frame[]> ExpectAllAsync(Func<Frame, bool>[] predicates, CancellationToken cancellationToken)
        {
            var found = new Frame?[predicates.Length];
            while (found.Any(f => f is null))
            {
                var frame = await ExpectAsync(f => Enumerable.Range(0, predicates.Length).Any(i => found[i] is null && predicates[i](f)), cancellationToken);
                found[Enumerable.Range(0, predicates.Length).First(i => found[i] is null && predicates[i](frame))] = frame;
            }

            return [.. found.Select(f => f!)];
        }

        /// <summary>Reads printed lines until one is a frame that matches; every line must be one JSON frame.</summary>
        public async Task<Frame> ExpectAsync(Func<Frame, bool> predicate, CancellationToken cancellationToken)
        {
            while (await _lines.Reader.WaitToReadAsync(cancellationToken))
            {
                while (_lines.Reader.TryRead(out var line))
                {
                    var frame = new Frame(line);
                    if (predicate(frame))
                    {
                        return frame;
                    }
                }
            }

            lock (_stderr)
            {
                throw new AssertionException($"wscat exited ({_process.ExitCode}) before the expected frame; stderr: {string.Join('\n', _stderr)}");
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }

            _process.Dispose();
        }
    }
}
