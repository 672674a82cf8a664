using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using ChatServer.Hosting;
using ChatServer.Protocol;
using Microsoft.Extensions.Options;

namespace ChatServer.Webhooks;

/// <summary>
/// This instance's webhook outbox (docs/API.md "Webhooks"). The chat only enqueues (<see cref="MessageCreated"/> and
/// the others: an id, a clock read and a queue write, never a wait), and workers POST the events behind it with an
/// <see cref="HttpClient"/> from <see cref="IHttpClientFactory"/>, signed. A 2xx ends an event; anything else, or no
/// answer within <see cref="WebhookOptions.Timeout"/>, is retried after an exponential back-off with jitter, for as long
/// as the event is younger than <see cref="WebhookOptions.MaxAge"/>. The queue is bounded: what it cannot take, what
/// outlives its age and what is left when the instance stops is dropped, counted (<c>chat.webhooks.dropped</c>) and
/// logged with the event's id. Events held by an instance die with it (they live in memory).
/// </summary>
internal sealed class WebhookOutbox : IHostedLifecycleService, IDisposable
{
    public const string HttpClientName = "webhooks";

    private const string QueueFull = "queue_full";
    private const string MaxAge = "max_age";
    private const string Stopping = "stopping";

    private readonly WebhookOptions _options;
    private readonly Uri _url;
    private readonly byte[] _secret;
    private readonly IHttpClientFactory _clients;
    private readonly TimeProvider _time;
    private readonly ILogger<WebhookOutbox> _logger;
    private readonly Channel<Delivery> _ready = Channel.CreateUnbounded<Delivery>();
    private readonly ConcurrentDictionary<Delivery, byte> _backingOff = new();   // waiting for their next attempt
    private readonly CancellationTokenSource _stopping = new();
    private readonly Counter<long> _sent;
    private readonly Counter<long> _retried;
    private readonly Counter<long> _dropped;
    private Task[] _workers = [];
    private readonly Lock _stopSync = new();
    private Task? _stopped;
    private int _pending;   // accepted and not finished: queued, in flight or backing off
    private int _closed;    // 1 once the instance has stopped delivering: later events are dropped

    public WebhookOutbox(IOptions<WebhookOptions> options, IHttpClientFactory clients, TimeProvider time, IMeterFactory meters,
        ILogger<WebhookOutbox> logger)
    {
        (_options, _clients, _time, _logger) = (options.Value, clients, time, logger);
        _url = new Uri(_options.Url!, UriKind.Absolute);
        _secret = Encoding.UTF8.GetBytes(_options.Secret!);
        var meter = meters.Create(ChatMetrics.MeterName);
        _sent = meter.CreateCounter<long>("chat.webhooks.sent", "{event}", "Webhook events delivered (the receiver answered 2xx).");
        _retried = meter.CreateCounter<long>("chat.webhooks.retried", "{attempt}",
            "Webhook attempts that failed (not 2xx, or no answer in time) and were scheduled again.");
        _dropped = meter.CreateCounter<long>("chat.webhooks.dropped", "{event}",
            "Webhook events given up, by reason: queue_full, max_age, stopping. Each is logged with its id.");
        meter.CreateObservableGauge("chat.webhooks.queued", () => Volatile.Read(ref _pending), "{event}",
            "Webhook events this instance holds: waiting, in flight or waiting for a retry.");
    }

    /// <summary>Events held now (tests).</summary>
    internal int Pending => Volatile.Read(ref _pending);

    /// <summary>A message was stored (not a duplicate send).</summary>
    public void MessageCreated(string room, string user, long seq, string epoch, string ts, string text, string? key) =>
        Enqueue(WebhookEventTypes.MessageCreated, id => new WebhookEvent
        {
            Id = id.Id, Type = WebhookEventTypes.MessageCreated, At = id.At,
            Room = room, User = user, Seq = seq, Epoch = epoch, Ts = ts, Text = text, Key = key,
        });

    /// <summary>A message became a tombstone; <paramref name="by"/> is <c>author</c> or <c>api</c>.</summary>
    public void MessageDeleted(string room, long seq, string epoch, string by) =>
        Enqueue(WebhookEventTypes.MessageDeleted, id => new WebhookEvent
        {
            Id = id.Id, Type = WebhookEventTypes.MessageDeleted, At = id.At, Room = room, Seq = seq, Epoch = epoch, By = by,
        });

    /// <summary>A user's first connection in a room, across all instances.</summary>
    public void UserJoined(string room, string user) => Enqueue(WebhookEventTypes.UserJoined, id => new WebhookEvent
    {
        Id = id.Id, Type = WebhookEventTypes.UserJoined, At = id.At, Room = room, User = user,
    });

    /// <summary>A user's last connection in a room left (or expired with its instance), across all instances.</summary>
    public void UserLeft(string room, string user) => Enqueue(WebhookEventTypes.UserLeft, id => new WebhookEvent
    {
        Id = id.Id, Type = WebhookEventTypes.UserLeft, At = id.At, Room = room, User = user,
    });

    /// <summary>A user has no connection left in any room on any instance.</summary>
    public void UserOffline(string user) => Enqueue(WebhookEventTypes.UserOffline, id => new WebhookEvent
    {
        Id = id.Id, Type = WebhookEventTypes.UserOffline, At = id.At, User = user,
    });

    private void Enqueue(string type, Func<(string Id, string At), WebhookEvent> build)
    {
        var now = _time.GetUtcNow();
        var webhookEvent = build((WebhookIds.New(), now.UtcDateTime.ToString(MessageEncoding.TimestampFormat, CultureInfo.InvariantCulture)));
        if (Volatile.Read(ref _closed) == 1)
        {
            Drop(webhookEvent, Stopping);
            return;
        }

        if (Interlocked.Increment(ref _pending) > _options.QueueCapacity)
        {
            Interlocked.Decrement(ref _pending);
            Drop(webhookEvent, QueueFull);
            return;
        }

        WebhookLog.Queued(_logger, webhookEvent.Id, type);
        var delivery = new Delivery(webhookEvent, _time.GetTimestamp());
        if (!_ready.Writer.TryWrite(delivery))
        {
            Finish(delivery, Stopping);   // stopped between the check above and here
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _workers = [.. Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(WorkAsync, CancellationToken.None))];
        WebhookLog.Started(_logger, _url.Scheme, _url.Host, _url.Port, _options.QueueCapacity, _options.MaxAge.TotalSeconds);
        return Task.CompletedTask;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Nothing yet: the server stops after this, and its connections' leaves still become events.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// After every hosted service stopped (the server too, so every connection has closed and its events are queued):
    /// delivers what is held for up to <see cref="WebhookOptions.DrainTimeout"/>, then drops and logs the rest. Once:
    /// a host can be stopped twice at once (a <c>WebApplication</c>'s <c>Run</c> and its owner), and both wait for it.
    /// </summary>
    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        lock (_stopSync)
        {
            return _stopped ??= DrainAndStopAsync(cancellationToken);
        }
    }

    private async Task DrainAndStopAsync(CancellationToken cancellationToken)
    {
        var draining = _time.GetTimestamp();
        while (Volatile.Read(ref _pending) > 0 && _time.GetElapsedTime(draining) < _options.DrainTimeout && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, CancellationToken.None);
        }

        Volatile.Write(ref _closed, 1);
        await _stopping.CancelAsync();
        _ready.Writer.TryComplete();
        await Task.WhenAll(_workers);
        while (_ready.Reader.TryRead(out var delivery))
        {
            Finish(delivery, Stopping);
        }

        foreach (var delivery in _backingOff.Keys)
        {
            if (_backingOff.TryRemove(delivery, out _))
            {
                Finish(delivery, Stopping);
            }
        }
    }

    public void Dispose() => _stopping.Dispose();

    private async Task WorkAsync()
    {
        var stopping = _stopping.Token;
        try
        {
            while (await _ready.Reader.WaitToReadAsync(stopping))
            {
                while (_ready.Reader.TryRead(out var delivery))
                {
                    await DeliverAsync(delivery, stopping);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // stopping: StoppedAsync drops what is left
        }
    }

    /// <summary>One attempt; never throws. Ends the event (sent or dropped) or schedules its next attempt.</summary>
    private async Task DeliverAsync(Delivery delivery, CancellationToken stopping)
    {
        if (delivery.Attempts == 0 && _time.GetElapsedTime(delivery.Created) > _options.MaxAge)
        {
            Finish(delivery, MaxAge);   // waited in the queue past its age (a retry was checked when it was scheduled)
            return;
        }

        delivery.Attempts++;
        string failure;
        try
        {
            delivery.Body ??= JsonSerializer.SerializeToUtf8Bytes(delivery.Event, WebhookJsonContext.Body.WebhookEvent);
            var timestamp = _time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
            using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ByteArrayContent(delivery.Body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add("X-Chat-Event-Id", delivery.Event.Id);
            request.Headers.Add("X-Chat-Timestamp", timestamp);
            request.Headers.Add("X-Chat-Signature", Signature(_secret, timestamp, delivery.Body));
            using var client = _clients.CreateClient(HttpClientName);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stopping);
            if (response.IsSuccessStatusCode)
            {
                _sent.Add(1);
                Finish(delivery, dropped: null);
                return;
            }

            failure = ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            Finish(delivery, Stopping);
            return;
        }
        catch (OperationCanceledException)
        {
            failure = "no answer in time";   // HttpClient.Timeout
        }
        catch (HttpRequestException ex)
        {
            failure = ex.HttpRequestError.ToString();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            failure = ex.GetType().Name;   // whatever else: retried like a failed request, never lost silently
        }

        var delay = Backoff(delivery.Attempts);
        if (_time.GetElapsedTime(delivery.Created) + delay > _options.MaxAge)
        {
            WebhookLog.AttemptFailed(_logger, delivery.Event.Id, delivery.Attempts, failure, -1);
            Finish(delivery, MaxAge);
            return;
        }

        _retried.Add(1);
        WebhookLog.AttemptFailed(_logger, delivery.Event.Id, delivery.Attempts, failure, delay.TotalMilliseconds);
        _backingOff[delivery] = 0;
        _ = RetryLaterAsync(delivery, delay);
    }

    private async Task RetryLaterAsync(Delivery delivery, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            // stopping: StoppedAsync drops it
        }

        if (_backingOff.TryRemove(delivery, out _) && !_ready.Writer.TryWrite(delivery))
        {
            Finish(delivery, Stopping);
        }
    }

    /// <summary>
    /// Back-off before attempt <paramref name="attempts"/> + 1: <see cref="WebhookOptions.RetryDelay"/> doubled per
    /// failed attempt, capped at <see cref="WebhookOptions.MaxRetryDelay"/>, then "equal jitter": half of it fixed and
    /// half random, so instances retrying after one outage spread out.
    /// </summary>
    private TimeSpan Backoff(int attempts)
    {
        var ceiling = Math.Min(_options.RetryDelay.Ticks * Math.Pow(2, Math.Min(attempts - 1, 40)), _options.MaxRetryDelay.Ticks);
        return TimeSpan.FromTicks((long)(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2));
    }

    private void Finish(Delivery delivery, string? dropped)
    {
        Interlocked.Decrement(ref _pending);
        if (dropped is not null)
        {
            Drop(delivery.Event, dropped);
        }
    }

    private void Drop(WebhookEvent webhookEvent, string reason)
    {
        _dropped.Add(1, new KeyValuePair<string, object?>("reason", reason));
        WebhookLog.Dropped(_logger, webhookEvent.Id, webhookEvent.Type, reason);
    }

    /// <summary><c>sha256=</c> and the lowercase hex HMAC-SHA256 of <c>"&lt;timestamp&gt;.&lt;body&gt;"</c>.</summary>
    internal static string Signature(byte[] secret, string timestamp, ReadOnlySpan<byte> body)
    {
        var signed = new byte[timestamp.Length + 1 + body.Length];
        Encoding.ASCII.GetBytes(timestamp, signed);
        signed[timestamp.Length] = (byte)'.';
        body.CopyTo(signed.AsSpan(timestamp.Length + 1));
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(secret, signed));
    }

    /// <summary>An event on its way: made once, attempted until it ends. Compared by reference.</summary>
    private sealed class Delivery(WebhookEvent webhookEvent, long created)
    {
        public WebhookEvent Event { get; } = webhookEvent;

        public long Created { get; } = created;   // TimeProvider timestamp

        public int Attempts { get; set; }

        public byte[]? Body { get; set; }
    }
}

internal static partial class WebhookLog
{
    [LoggerMessage(900, LogLevel.Information,
        "Webhooks on: events POSTed to {Scheme}://{Host}:{Port} (path not logged), queue of {Capacity}, retried for {MaxAgeSeconds} s.")]
    public static partial void Started(ILogger logger, string scheme, string host, int port, int capacity, double maxAgeSeconds);

    [LoggerMessage(901, LogLevel.Warning, "Webhook event {EventId} ({Type}) dropped: {Reason}.")]
    public static partial void Dropped(ILogger logger, string eventId, string type, string reason);

    [LoggerMessage(902, LogLevel.Debug, "Webhook event {EventId}: attempt {Attempt} failed ({Failure}); next attempt in {DelayMs} ms (-1: none).")]
    public static partial void AttemptFailed(ILogger logger, string eventId, int attempt, string failure, double delayMs);

    [LoggerMessage(903, LogLevel.Debug, "Webhook event {EventId} ({Type}) queued.")]
    public static partial void Queued(ILogger logger, string eventId, string type);

    [LoggerMessage(904, LogLevel.Warning, "Updating a user's presence across rooms (for user.offline) failed.")]
    public static partial void UserPresenceFailed(ILogger logger, Exception exception);
}
