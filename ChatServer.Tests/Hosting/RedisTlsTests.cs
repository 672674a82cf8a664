using System.Net;
using StackExchange.Redis;

namespace ChatServer.Tests.Hosting;

/// <summary>
/// The TLS Redis of <see cref="Backend.RedisTls"/> really demands what Memorystore does (each refused connection differs
/// from the accepted one in one thing only), and <c>Redis:TrustedCaCertificate</c> is what lets the server in.
/// </summary>
public sealed class RedisTlsTests
{
    [Test, CancelAfter(30_000)]
    public async Task The_TLS_Redis_takes_its_user_with_password_over_TLS_trusting_its_CA(CancellationToken cancellationToken)
    {
        var tls = await TestRedisTls.GetAsync();
        var options = tls.ClientOptions();

        await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
        var whoami = await redis.GetDatabase().ExecuteAsync("ACL", "WHOAMI").WaitAsync(cancellationToken);

        Assert.That(options.Ssl, Is.True);
        Assert.That(whoami.ToString(), Is.EqualTo(options.User ?? "default"));
    }

    [Test, CancelAfter(30_000)]
    public async Task The_TLS_Redis_refuses_a_connection_without_the_password(CancellationToken cancellationToken)
    {
        var tls = await TestRedisTls.GetAsync();
        var options = tls.ClientOptions();
        Assume.That(options.Password, Is.Not.Null, "CHAT_TEST_REDIS_TLS names no password");
        options.Password = null;

        var failure = await FailureAsync(options, cancellationToken);

        // Redis's own refusal (WRONGPASS or NOAUTH), so TLS itself was fine.
        Assert.That(failure, Is.InstanceOf<RedisConnectionException>()
            .With.Property(nameof(RedisConnectionException.FailureType)).EqualTo(ConnectionFailureType.AuthenticationFailure)
            .And.Message.Contains("RedisServerException"), failure?.ToString());
    }

    [Test, CancelAfter(30_000)]
    public async Task The_TLS_Redis_refuses_a_client_that_does_not_trust_its_CA(CancellationToken cancellationToken)
    {
        var tls = await TestRedisTls.GetAsync();
        Assume.That(tls.CaCertificatePath, Is.Not.Null, "CHAT_TEST_REDIS_TLS_CA is unset: the machine trusts the certificate");
        var options = ConfigurationOptions.Parse(tls.ConnectionString);   // no TrustIssuer: the machine's trust store alone

        var failure = await FailureAsync(options, cancellationToken);

        // The TLS handshake's refusal of the certificate, before any password is sent.
        Assert.That(failure, Is.InstanceOf<RedisConnectionException>()
            .With.Property(nameof(RedisConnectionException.FailureType)).EqualTo(ConnectionFailureType.AuthenticationFailure)
            .And.Message.Contains("certificate"), failure?.ToString());
    }

    [Test, CancelAfter(30_000)]
    public async Task The_TLS_Redis_refuses_a_connection_without_TLS(CancellationToken cancellationToken)
    {
        var tls = await TestRedisTls.GetAsync();
        var options = tls.ClientOptions();
        options.Ssl = false;

        var failure = await FailureAsync(options, cancellationToken);

        Assert.That(failure, Is.InstanceOf<RedisConnectionException>(), failure?.ToString());
    }

    [Test, CancelAfter(30_000)]
    public async Task A_server_is_ready_on_the_TLS_Redis_with_TrustedCaCertificate_and_not_without(CancellationToken cancellationToken)
    {
        var tls = await TestRedisTls.GetAsync();
        Assume.That(tls.CaCertificatePath, Is.Not.Null, "CHAT_TEST_REDIS_TLS_CA is unset: the machine trusts the certificate");

        // The first connection attempt ends before the host starts serving, so /readyz tells its outcome at once. The
        // refused one may take its whole connect timeout to give up (seen: twice the default 5 s on a loaded machine).
        await using var trusting = new ChatHost(tls.ConnectionString, new Dictionary<string, string?> { ["Redis:TrustedCaCertificate"] = tls.CaCertificatePath });
        await using var untrusting = new ChatHost($"{tls.ConnectionString},connectTimeout=1000");
        using var trustingHttp = trusting.CreateHttpClient();
        using var untrustingHttp = untrusting.CreateHttpClient();

        Assert.That((await trustingHttp.GetAsync("/readyz", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await untrustingHttp.GetAsync("/readyz", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
    }

    /// <summary>What connecting and a PING throw, or null when both succeed.</summary>
    private static async Task<Exception?> FailureAsync(ConfigurationOptions options, CancellationToken cancellationToken)
    {
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 5000;
        options.ConnectRetry = 1;
        try
        {
            await using var redis = await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(cancellationToken);
            await redis.GetDatabase().PingAsync().WaitAsync(cancellationToken);
            return null;
        }
        catch (RedisException ex)
        {
            return ex;
        }
    }
}
