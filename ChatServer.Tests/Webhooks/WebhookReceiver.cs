using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ChatServer.Tests.Webhooks;

/// <summary>
/// The operator's backend in the webhook tests: a real Kestrel host on 127.0.0.1 that records every POST to
/// <c>/hooks</c> (headers, body, what it answered). It answers 200, or what <see cref="AnswerFor"/> says for an event's
/// first attempts (500, or nothing), or holds every request while <see cref="Hang"/> is on (until <see cref="Release"/>
/// or the sender gives up). Tests wait
/// for what arrives (<see cref="WaitForAsync"/>), never sleep.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public const string Secret = "test-webhook-secret-\u00e9";

    private readonly WebApplication _app;
    private readonly Lock _sync = new();
    private readonly List<WebhookRequest> _requests = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _hang;
    private readonly List<(Func<WebhookRequest, bool> Match, Answer[] Answers)> _rules = [];
    private readonly Dictionary<string, int> _attempts = [];

    private WebhookReceiver(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = null!;

    /// <summary>Settings that point a chat host here (plus <paramref name="more"/>).</summary>
    public Dictionary<string, string?> Settings(IReadOnlyDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Webhooks:Url"] = Url.ToString(),
            ["Webhooks:Secret"] = Secret,
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return settings;
    }

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "WebhookReceiver" });
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/hooks", receiver.ReceiveAsync);
        await app.StartAsync();
        receiver.Url = new Uri($"http://127.0.0.1:{new Uri(app.Urls.First()).Port}/hooks");
        return receiver;
    }

    /// <summary>Every request so far, in arrival order (attempts included: a retried event appears once per attempt).</summary>
    public IReadOnlyList<WebhookRequest> Requests
    {
        get
        {
            lock (_sync)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>What a receiver that dedupes by id keeps: the first 2xx-answered request of each event id.</summary>
    public IReadOnlyList<WebhookRequest> Delivered => [.. Requests.Where(r => r.Status == 200).DistinctBy(r => r.Id)];

    /// <summary>
    /// The first attempts of each event matching <paramref name="match"/> get <paramref name="firstAttempts"/> in turn
    /// (500, or no answer until the sender gives up); later attempts get 200.
    /// </summary>
    public void AnswerFor(Func<WebhookRequest, bool> match, params Answer[] firstAttempts)
    {
        lock (_sync)
        {
            _rules.Add((match, firstAttempts));
        }
    }

    /// <summary>From now on every request waits (until <see cref="Release"/>, or until the sender aborts it).</summary>
    public void Hang()
    {
        lock (_sync)
        {
            _hang ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Held requests are answered 200, and new ones at once.</summary>
    public void Release()
    {
        lock (_sync)
        {
            _hang?.TrySetResult();
            _hang = null;
        }
    }

    /// <summary>Waits until a request answered 200 matches; returns it.</summary>
    public Task<WebhookRequest> WaitForAsync(Func<WebhookRequest, bool> predicate, CancellationToken cancellationToken) =>
        WaitForAnyAsync(r => r.Status == 200 && predicate(r), cancellationToken);

    /// <summary>Waits until any request (whatever it was answered) matches; returns the first that does.</summary>
    public async Task<WebhookRequest> WaitForAnyAsync(Func<WebhookRequest, bool> predicate, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_sync)
            {
                if (_requests.FirstOrDefault(predicate) is { } found)
                {
                    return found;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> requests match.</summary>
    public async Task WaitForCountAsync(Func<WebhookRequest, bool> predicate, int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_sync)
            {
                if (_requests.Count(predicate) >= count)
                {
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken);
        }
    }

    private async Task ReceiveAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var headers = context.Request.Headers;
        var request = new WebhookRequest(headers["X-Chat-Event-Id"].ToString(), headers["X-Chat-Timestamp"].ToString(),
            headers["X-Chat-Signature"].ToString(), context.Request.ContentType, buffer.ToArray(), 200);
        Task? hang;
        var answer = Answer.Ok;
        lock (_sync)
        {
            hang = _hang?.Task;
            var attempt = _attempts[request.Id] = _attempts.GetValueOrDefault(request.Id) + 1;
            if (_rules.FirstOrDefault(r => r.Match(request)) is { Answers: { } answers } && attempt <= answers.Length)
            {
                answer = answers[attempt - 1];
            }
        }

        if (answer == Answer.Hang)
        {
            hang = Task.Delay(Timeout.Infinite, context.RequestAborted);
        }

        var status = answer == Answer.Fail ? 500 : 200;
        if (hang is not null)
        {
            try
            {
                await hang.WaitAsync(context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                status = 0;   // the sender gave up waiting
            }
        }

        Record(request.WithStatus(status));
        context.Response.StatusCode = status == 0 ? 499 : status;   // 0: nobody is listening any more
    }

    private void Record(WebhookRequest request)
    {
        TaskCompletionSource changed;
        lock (_sync)
        {
            _requests.Add(request);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.SetResult();
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        await _app.DisposeAsync();
    }
}

/// <summary>How the receiver answers one attempt.</summary>
public enum Answer
{
    Ok,
    Fail,
    Hang,
}

/// <summary>One POST the receiver got, and what it answered (0: nothing, the sender gave up first).</summary>
public sealed class WebhookRequest(string id, string timestamp, string signature, string? contentType, byte[] body, int status)
{
    private readonly JsonElement _root = JsonDocument.Parse(body).RootElement;

    public string Id { get; } = id;
    public string Timestamp { get; } = timestamp;
    public string Signature { get; } = signature;
    public string? ContentType { get; } = contentType;
    public byte[] Body { get; } = body;
    public int Status { get; } = status;
    public JsonElement Root => _root;

    public string? Type => String("type");
    public string? Room => String("room");
    public string? User => String("user");
    public string? Text => String("text");
    public long? Seq => _root.TryGetProperty("seq", out var v) ? v.GetInt64() : null;

    /// <summary>Whether <see cref="Signature"/> is <c>sha256=</c> and the HMAC-SHA256 of "timestamp.body" with <paramref name="secret"/>.</summary>
    public bool SignatureMatches(string secret)
    {
        var signed = Encoding.UTF8.GetBytes(Timestamp + ".").Concat(Body).ToArray();
        var expected = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(Signature));
    }

    public WebhookRequest WithStatus(int status) => new(Id, Timestamp, Signature, ContentType, Body, status);

    public override string ToString() => $"{Status} {Encoding.UTF8.GetString(Body)}";

    private string? String(string name) => _root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
