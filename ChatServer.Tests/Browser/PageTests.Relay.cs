using System.Collections.Concurrent;
using Microsoft.Playwright;

namespace ChatServer.Tests.Browser;

public sealed partial class PageTests
{
    /// <summary>
    /// Stands between the page's sockets and the server: forwards every frame both ways, records them, and on request
    /// holds back, drops, answers or precedes a frame, cuts the connection, or refuses new ones as an unreachable server
    /// would. Each socket the page opens (a reconnect opens another) is a link of its own; what the test sends goes on
    /// the newest. Handlers run on Playwright's dispatcher, one at a time.
    /// </summary>
    private sealed class SocketRelay
    {
        private readonly ConcurrentQueue<Frame> _fromPage = new();
        private readonly List<Frame> _forwarded = [];
        private readonly List<(Func<Frame, bool> Match, TaskCompletionSource<Frame> Done)> _waiters = [];
        private readonly List<(Func<IReadOnlyList<Frame>, bool> Enough, TaskCompletionSource Done)> _pageWaiters = [];
        private readonly TaskCompletionSource<Frame> _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<(Link Link, Frame Frame)> _backlog = [];
        private readonly List<(Link Link, Frame Frame)> _heldFromPage = [];
        private readonly object _lock = new();   // Monitor is re-entrant: an action run under it may call back in
        private Link? _link;
        private Func<Frame, bool>? _hold;
        private bool _holding;
        private (Func<Frame, bool> Match, bool Once)? _drop;
        private (Func<Frame, bool> Match, Action<Frame> Action, bool Once)? _before;
        private (Func<Frame, bool> Match, Action<Frame> Action, bool Once)? _after;
        private (Func<Frame, bool> Match, Func<Frame, string?> Answer, bool Once)? _intercept;
        private Func<Frame, bool>? _holdFromPage;
        private bool _refusing;

        /// <summary>One socket of the page and its connection to the server.</summary>
        private sealed class Link(IWebSocketRoute page, IWebSocketRoute server)
        {
            public IWebSocketRoute Page { get; } = page;
            public IWebSocketRoute Server { get; } = server;

            /// <summary>The page's side is closed: what the server still sends on this link goes nowhere.</summary>
            public bool Cut { get; set; }
        }

        /// <summary>Every frame the page sent, on any of its sockets, in order.</summary>
        public IReadOnlyList<Frame> FromPage => [.. _fromPage];

        public void Attach(IWebSocketRoute page)
        {
            lock (_lock)
            {
                if (_refusing)
                {
                    _ = page.CloseAsync(new() { Code = 4000, Reason = "unreachable (test)" });
                    return;
                }

                var link = new Link(page, page.ConnectToServer());
                _link = link;
                page.OnMessage(message => FromPageFrame(link, new Frame(message.Text ?? "{}")));
                link.Server.OnMessage(message => FromServer(link, new Frame(message.Text ?? "{}")));
                // Closes are passed on by hand, so that a cut can leave the server's side open.
                page.OnClose((code, reason) =>
                {
                    if (!link.Cut)
                    {
                        _ = link.Server.CloseAsync(new() { Code = code, Reason = reason });
                    }
                });
                link.Server.OnClose((code, reason) =>
                {
                    if (!link.Cut)
                    {
                        link.Cut = true;
                        _ = page.CloseAsync(new() { Code = code, Reason = reason });
                    }
                });
            }
        }

        public void SendToServer(string text) => _link!.Server.Send(text);

        /// <summary>The first frame from the server that matches, and everything after it, wait for <see cref="Release"/>.</summary>
        public void Hold(Func<Frame, bool> match) => _hold = match;

        /// <summary>Frames from the server that match are not passed to the page.</summary>
        public void Drop(Func<Frame, bool> match, bool once = false) => _drop = (match, once);

        public void BeforeForwarding(Func<Frame, bool> match, Action<Frame> action, bool once) => _before = (match, action, once);

        /// <summary>Runs <paramref name="action"/> right after a matching frame from the page went to the server.</summary>
        public void AfterForwarding(Func<Frame, bool> match, Action<Frame> action, bool once) => _after = (match, action, once);

        /// <summary>A matching frame from the page never reaches the server; the page gets <paramref name="answer"/>'s text instead (or nothing for null).</summary>
        public void Intercept(Func<Frame, bool> match, Func<Frame, string?> answer, bool once) => _intercept = (match, answer, once);

        /// <summary>Matching frames from the page wait (on their own link) for <see cref="ReleaseFromPage"/>; null stops holding.</summary>
        public void HoldFromPage(Func<Frame, bool>? match) => _holdFromPage = match;

        /// <summary>Sends the oldest <paramref name="count"/> held page frames to the server, each on the link it came on.</summary>
        public void ReleaseFromPage(int count)
        {
            lock (_lock)
            {
                foreach (var (link, frame) in _heldFromPage.Take(count).ToList())
                {
                    _heldFromPage.RemoveAt(0);
                    link.Server.Send(frame.Raw);
                }
            }
        }

        /// <summary>
        /// Closes the page's current socket, as a network that drops; with <paramref name="serverSideToo"/> false the
        /// server's side stays open, like a connection whose last frames are still on their way.
        /// </summary>
        public void Cut(bool serverSideToo = true)
        {
            lock (_lock)
            {
                var link = _link!;
                link.Cut = true;
                _ = link.Page.CloseAsync(new() { Code = 4000, Reason = "cut (test)" });
                if (serverSideToo)
                {
                    _ = link.Server.CloseAsync();
                }
            }
        }

        /// <summary>While refusing, every new socket of the page is closed at once and never reaches the server.</summary>
        public void Refuse(bool refusing)
        {
            lock (_lock)
            {
                _refusing = refusing;
            }
        }

        public Task<Frame> HeldAsync(CancellationToken cancellationToken) => _held.Task.WaitAsync(cancellationToken);

        public void Release()
        {
            lock (_lock)
            {
                _holding = false;
                foreach (var (link, frame) in _backlog)
                {
                    Forward(link, frame);
                }

                _backlog.Clear();
            }
        }

        /// <summary>The first frame that matches once it has been passed to the page (or already was).</summary>
        public Task<Frame> ForwardedAsync(Func<Frame, bool> match, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                if (_forwarded.FirstOrDefault(match) is { } forwarded)
                {
                    return Task.FromResult(forwarded);
                }

                var waiter = new TaskCompletionSource<Frame>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((match, waiter));
                return waiter.Task.WaitAsync(cancellationToken);
            }
        }

        /// <summary>Completes once <paramref name="count"/> frames that match have come from the page (or already had).</summary>
        public Task FromPageAsync(Func<Frame, bool> match, int count, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                bool Enough(IReadOnlyList<Frame> frames) => frames.Count(match) >= count;
                if (Enough(FromPage))
                {
                    return Task.CompletedTask;
                }

                var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _pageWaiters.Add((Enough, waiter));
                return waiter.Task.WaitAsync(cancellationToken);
            }
        }

        private void FromPageFrame(Link link, Frame frame)
        {
            lock (_lock)
            {
                _fromPage.Enqueue(frame);
                var frames = FromPage;
                foreach (var waiter in _pageWaiters.Where(w => w.Enough(frames)).ToList())
                {
                    _pageWaiters.Remove(waiter);
                    waiter.Done.TrySetResult();
                }

                if (_intercept is { } intercept && intercept.Match(frame))
                {
                    _intercept = intercept.Once ? null : intercept;
                    if (intercept.Answer(frame) is { } answer)
                    {
                        link.Page.Send(answer);
                    }

                    return;
                }

                if (_holdFromPage is { } holdFromPage && holdFromPage(frame))
                {
                    _heldFromPage.Add((link, frame));
                    return;
                }

                if (_before is { } before && before.Match(frame))
                {
                    _before = before.Once ? null : before;
                    before.Action(frame);
                }

                link.Server.Send(frame.Raw);
                if (_after is { } after && after.Match(frame))
                {
                    _after = after.Once ? null : after;
                    after.Action(frame);
                }
            }
        }

        private void FromServer(Link link, Frame frame)
        {
            lock (_lock)
            {
                if (link.Cut)
                {
                    return;
                }

                if (_drop is { } drop && drop.Match(frame))
                {
                    _drop = drop.Once ? null : drop;
                    return;
                }

                if (!_holding && _hold is { } hold && hold(frame))
                {
                    _hold = null;
                    _holding = true;
                    _backlog.Add((link, frame));
                    _held.TrySetResult(frame);
                    return;
                }

                // While a frame is held, what comes after it waits behind it, but for presence frames: those are what
                // a test lets cross the held frame.
                if (_holding && frame.Type != "presence")
                {
                    _backlog.Add((link, frame));
                    return;
                }

                Forward(link, frame);
            }
        }

        private void Forward(Link link, Frame frame)
        {
            lock (_lock)
            {
                _forwarded.Add(frame);
                link.Page.Send(frame.Raw);
                foreach (var waiter in _waiters.Where(w => w.Match(frame)).ToList())
                {
                    _waiters.Remove(waiter);
                    waiter.Done.TrySetResult(frame);
                }
            }
        }
    }
}
