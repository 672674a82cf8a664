namespace ChatServer.Webhooks;

/// <summary>
/// Webhooks (docs/API.md "Webhooks"): off unless <see cref="Url"/> is set. Bound from section <c>Webhooks</c>
/// (<c>Webhooks__Url=…</c>) and validated at start-up.
/// </summary>
public sealed class WebhookOptions
{
    public const string Section = "Webhooks";

    /// <summary>Where every event is POSTed (http or https); unset: no webhooks, and nothing of them runs.</summary>
    public string? Url { get; set; }

    /// <summary>The HMAC-SHA256 key of <c>X-Chat-Signature</c>; required with <see cref="Url"/>.</summary>
    public string? Secret { get; set; }

    /// <summary>How long an event is retried after it happened; then it is dropped (counted and logged).</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Events one instance holds at most (waiting, in flight or waiting for a retry); beyond it new ones are dropped.</summary>
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>How long one attempt waits for the response's status; no answer in time counts as a failure.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The back-off before the second attempt; it doubles per attempt (with jitter) up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest back-off between two attempts.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Requests one instance has in flight at most.</summary>
    public int Concurrency { get; set; } = 8;

    /// <summary>
    /// At shutdown, after the connections have closed (their leaves queued), how long the instance keeps delivering what
    /// is queued before it drops the rest (logged). The host's shutdown timeout bounds it too.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public bool IsEnabled => !string.IsNullOrWhiteSpace(Url);
}
