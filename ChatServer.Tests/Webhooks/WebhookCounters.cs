using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServer.Tests.Webhooks;

/// <summary>
/// The <c>chat.webhooks.*</c> counters of one host, read exactly: a <see cref="MeterListener"/> that listens only to
/// instruments of that host's meter (its <see cref="IMeterFactory"/> is the meter's scope), so other hosts in the test
/// process do not add to them. Counts by instrument name and, for <c>dropped</c>, by <c>reason</c>.
/// </summary>
public sealed class WebhookCounters : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _sync = new();
    private readonly Dictionary<string, long> _counts = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public WebhookCounters(ChatHost host)
    {
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Name.StartsWith("chat.webhooks.", StringComparison.Ordinal) && instrument is Counter<long>)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var name = instrument.Name;
            foreach (var tag in tags)
            {
                if (tag.Key == "reason")
                {
                    name += "/" + tag.Value;
                }
            }

            TaskCompletionSource changed;
            lock (_sync)
            {
                _counts[name] = _counts.GetValueOrDefault(name) + value;
                changed = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            changed.SetResult();
        });
        _listener.Start();
    }

    /// <summary><c>sent</c>, <c>retried</c>, or <c>dropped/queue_full</c>, <c>dropped/max_age</c>, <c>dropped/stopping</c>.</summary>
    public long this[string name]
    {
        get
        {
            lock (_sync)
            {
                return _counts.GetValueOrDefault("chat.webhooks." + name);
            }
        }
    }

    /// <summary>Waits until counter <paramref name="name"/> reaches <paramref name="atLeast"/>.</summary>
    public async Task WaitForAsync(string name, long atLeast, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_sync)
            {
                if (_counts.GetValueOrDefault("chat.webhooks." + name) >= atLeast)
                {
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken);
        }
    }

    public void Dispose() => _listener.Dispose();
}
