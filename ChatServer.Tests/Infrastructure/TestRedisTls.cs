using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using StackExchange.Redis;

namespace ChatServer.Tests;

/// <summary>
/// A Redis reached as Google Memorystore with in-transit encryption and AUTH is: TLS only, a server certificate from a
/// private CA the client must be told to trust, and an ACL user with a password (the default user is off). Found in
/// this order: a configuration string in <c>CHAT_TEST_REDIS_TLS</c> (with the CA's PEM file in
/// <c>CHAT_TEST_REDIS_TLS_CA</c> when its certificate is not publicly trusted); a <c>redis-server</c> started here on a
/// free loopback port, with a CA and certificate made for the run. Started the first time a test asks for it, stopped
/// when the assembly's tests end (<see cref="TestRedis"/> tears it down).
/// </summary>
public sealed class TestRedisTls : IDisposable
{
    private const string User = "chat";

    private static readonly Lazy<Task<TestRedisTls>> s_shared = new(StartAsync);

    private readonly RedisServerProcess? _process;
    private readonly string? _directory;

    private TestRedisTls(string connectionString, string? caCertificatePath, string source, RedisServerProcess? process = null, string? directory = null) =>
        (ConnectionString, CaCertificatePath, Source, _process, _directory) = (connectionString, caCertificatePath, source, process, directory);

    /// <summary>A StackExchange.Redis configuration string: <c>127.0.0.1:PORT,ssl=true,user=chat,password=…</c>.</summary>
    public string ConnectionString { get; }

    /// <summary>The PEM file of the CA that signed the server's certificate, or null when the machine already trusts it.</summary>
    public string? CaCertificatePath { get; }

    /// <summary>How the Redis was found, for the test log.</summary>
    public string Source { get; }

    /// <summary>The TLS Redis for this test run, started on first use.</summary>
    public static Task<TestRedisTls> GetAsync() => s_shared.Value;

    /// <summary>Client options for <see cref="ConnectionString"/>, trusting <see cref="CaCertificatePath"/> as the server does.</summary>
    public ConfigurationOptions ClientOptions()
    {
        var options = ConfigurationOptions.Parse(ConnectionString);
        if (CaCertificatePath is not null)
        {
            options.TrustIssuer(CaCertificatePath);
        }

        return options;
    }

    /// <summary>Stops the server if a test started one.</summary>
    internal static async Task StopSharedAsync()
    {
        if (s_shared.IsValueCreated)
        {
            try
            {
                (await s_shared.Value).Dispose();
            }
            catch (InvalidOperationException)
            {
                // it never started; StartAsync already cleaned up
            }
        }
    }

    private static async Task<TestRedisTls> StartAsync()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("CHAT_TEST_REDIS_TLS");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            var ca = Environment.GetEnvironmentVariable("CHAT_TEST_REDIS_TLS_CA");
            var given = new TestRedisTls(fromEnvironment, string.IsNullOrWhiteSpace(ca) ? null : ca, "CHAT_TEST_REDIS_TLS");
            await TestContext.Progress.WriteLineAsync($"TLS Redis for tests: from CHAT_TEST_REDIS_TLS, CA {given.CaCertificatePath ?? "from the machine's trust store"}");
            return given;
        }

        var directory = Directory.CreateTempSubdirectory("chat-redis-tls-").FullName;
        try
        {
            var files = TestCertificates.Write(directory);
            var password = RandomNumberGenerator.GetHexString(32, lowercase: true);
            var port = RedisServerProcess.FreePort();
            var connectionString = $"127.0.0.1:{port},ssl=true,user={User},password={password}";
            var client = ConfigurationOptions.Parse(connectionString);
            client.TrustIssuer(files.CaCertificate);
            var process = await RedisServerProcess.StartTlsAsync(port, client,
                "--tls-cert-file", files.Certificate, "--tls-key-file", files.Key, "--tls-ca-cert-file", files.CaCertificate,
                "--tls-auth-clients", "no",
                // ACL as Memorystore's AUTH: nobody gets in as the default user, only as a named one with its password.
                "--user", "default", "off",
                "--user", User, "on", $">{password}", "~*", "&*", "+@all");
            var tls = new TestRedisTls(connectionString, files.CaCertificate, $"redis-server pid {process.ProcessId}", process, directory);
            await TestContext.Progress.WriteLineAsync($"TLS Redis for tests: 127.0.0.1:{port},ssl=true,user={User},password=… ({tls.Source})");
            return tls;
        }
        catch (Exception ex)
        {
            DeleteDirectory(directory);
            throw new InvalidOperationException($"The test TLS Redis did not start: {ex.Message}", ex);
        }
    }

    public void Dispose()
    {
        _process?.Dispose();
        if (_directory is not null)
        {
            DeleteDirectory(_directory);
        }
    }

    private static void DeleteDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp folder
        }
    }

    /// <summary>A CA and a server certificate it signed, for 127.0.0.1 and localhost, as PEM files.</summary>
    private static class TestCertificates
    {
        public static (string CaCertificate, string Certificate, string Key) Write(string directory)
        {
            var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);   // leeway for clocks
            var notAfter = DateTimeOffset.UtcNow.AddDays(2);

            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caRequest = new CertificateRequest("CN=Chat tests Redis CA", caKey, HashAlgorithmName.SHA256);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
            using var ca = caRequest.CreateSelfSigned(notBefore, notAfter);

            using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build(critical: false));
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));   // serverAuth
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
            using var server = request.Create(ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(16));

            var files = (CaCertificate: Path.Combine(directory, "ca.crt"), Certificate: Path.Combine(directory, "redis.crt"), Key: Path.Combine(directory, "redis.key"));
            File.WriteAllText(files.CaCertificate, ca.ExportCertificatePem());
            File.WriteAllText(files.Certificate, server.ExportCertificatePem());
            File.WriteAllText(files.Key, serverKey.ExportPkcs8PrivateKeyPem());
            return files;
        }
    }
}
