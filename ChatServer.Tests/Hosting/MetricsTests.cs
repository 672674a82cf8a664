using System.Globalization;
using System.Net;

namespace ChatServer.Tests.Hosting;

/// <summary>
/// <c>/metrics</c> in Prometheus format after real traffic. Every instrument the traffic touches is recorded before the
/// client can see the frame that proves it happened (an ack, a delivery), so one scrape after those frames suffices.
/// Other tests' hosts in this process use meters of the same name, so values are checked as lower bounds.
/// </summary>
public sealed class MetricsTests
{
    [Test, CancelAfter(20_000)]
    public async Task Metrics_endpoint_shows_the_counters_moved_by_sign_ins_messages_and_a_rejected_frame(CancellationToken cancellationToken)
    {
        await using var hostA = new ChatHost(TestRedis.ConnectionString);
        await using var hostB = new ChatHost(TestRedis.ConnectionString);
        var room = TestNames.Room();
        await using var alice = await ChatClient.SignInAsync(hostA.WebSocketUri, "alice", room, cancellationToken);
        await using var bob = await ChatClient.SignInAsync(hostB.WebSocketUri, "bob", room, cancellationToken);

        var sent = await alice.RequestAsync(new { type = "sendMessage", text = "hello" }, cancellationToken);
        Assert.That(sent.Ok, Is.True, sent.Raw);
        await alice.ExpectAsync(f => f.Type == "message", cancellationToken);
        await bob.ExpectAsync(f => f.Type == "message", cancellationToken);
        var rejected = await alice.RequestAsync(new { type = "sendMessage", text = "" }, cancellationToken);
        Assert.That(rejected.Ok, Is.False, rejected.Raw);

        using var http = hostA.CreateHttpClient();
        using var response = await http.GetAsync("/metrics", cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.Multiple(() =>
        {
            Assert.That(Value(text, "chat_connections_open"), Is.GreaterThanOrEqualTo(1), text);
            Assert.That(Value(text, "chat_rooms_served"), Is.GreaterThanOrEqualTo(1));
            Assert.That(Value(text, "chat_frames_received_total", "type=\"signin\""), Is.GreaterThanOrEqualTo(1));
            Assert.That(Value(text, "chat_frames_received_total", "type=\"sendMessage\""), Is.GreaterThanOrEqualTo(1));
            Assert.That(Value(text, "chat_frames_sent_total", "type=\"message\""), Is.GreaterThanOrEqualTo(1));
            Assert.That(Value(text, "chat_frames_sent_total", "type=\"ack\""), Is.GreaterThanOrEqualTo(3));
            Assert.That(Value(text, "chat_frames_rejected_total", "reason=\"invalid\""), Is.GreaterThanOrEqualTo(1));
            Assert.That(Value(text, "chat_redis_script_duration_seconds_count"), Is.GreaterThanOrEqualTo(1));
            Assert.That(Value(text, "chat_message_latency_seconds_count"), Is.GreaterThanOrEqualTo(1));
            Assert.That(text, Does.Contain("dotnet_gc_heap_total_allocated_bytes"), "runtime metrics are exported too");
        });
    }

    /// <summary>The sample of <paramref name="name"/> whose labels contain <paramref name="label"/>; -1 when absent.</summary>
    private static double Value(string exposition, string name, string label = "")
    {
        foreach (var line in exposition.Split('\n'))
        {
            if ((line.StartsWith(name + "{", StringComparison.Ordinal) || line.StartsWith(name + " ", StringComparison.Ordinal))
                && line.Contains(label, StringComparison.Ordinal))
            {
                var value = line.Contains('}', StringComparison.Ordinal) ? line[(line.LastIndexOf('}') + 1)..] : line[name.Length..];
                return double.Parse(value.Trim().Split(' ')[0], CultureInfo.InvariantCulture);   // "name{labels} value [timestamp]"
            }
        }

        return -1;
    }
}
