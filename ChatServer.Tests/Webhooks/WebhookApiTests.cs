using System.Net;
using ChatServer.Tests.Api;

namespace ChatServer.Tests.Webhooks;

/// <summary>The server API's writes are webhook events too: its posts are <c>message.created</c>, its deletes and erasures <c>message.deleted</c> by <c>api</c>.</summary>
public sealed class WebhookApiTests
{
    [Test, CancelAfter(30_000)]
    public async Task Posts_deletes_and_erasures_through_the_api_are_announced(CancellationToken cancellationToken)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var key = $"key-{Guid.NewGuid():N}";
        await using var host = new ChatHost(TestRedis.ConnectionString, receiver.Settings(new Dictionary<string, string?>(WebhookTests.TestSettings)
        {
            ["Api:Keys:0"] = key,
            ["Redis:KeyPrefix"] = $"wa{Guid.NewGuid():N}:",
        }));
        using var http = ApiFixture.Client(host, key);
        var room = TestNames.Room();

        var seqs = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            seqs.Add((await ApiFixture.PostAsync(http, room, "eve", $"post {i}", cancellationToken)).GetProperty("seq").GetInt64());
        }

        foreach (var seq in seqs)
        {
            var created = await receiver.WaitForAsync(r => r.Type == "message.created" && r.Room == room && r.Seq == seq, cancellationToken);
            Assert.That(created.Root.GetProperty("user").GetString(), Is.EqualTo("eve"));
        }

        var epoch = (await receiver.WaitForAsync(r => r.Type == "message.created" && r.Room == room, cancellationToken)).Root.GetProperty("epoch").GetString();
        using (var delete = await http.DeleteAsync($"{ApiFixture.Path(room)}/{epoch}/{seqs[0]}", cancellationToken))
        {
            Assert.That(delete.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        }

        using (var erase = await http.DeleteAsync("/api/users/eve/messages", cancellationToken))
        {
            Assert.That(erase.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        }

        foreach (var seq in seqs)
        {
            var deleted = await receiver.WaitForAsync(r => r.Type == "message.deleted" && r.Room == room && r.Seq == seq, cancellationToken);
            Assert.That(deleted.Root.GetProperty("by").GetString(), Is.EqualTo("api"));
        }
    }
}
