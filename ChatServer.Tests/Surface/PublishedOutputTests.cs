using Microsoft.IdentityModel.Tokens;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ChatServer.Tests.Surface;

/// <summary>
/// The container without a Docker engine: the test reads the Dockerfile, copies what its build stage copies into a
/// fresh folder (the build context, without bin/ and obj/), runs its <c>RUN dotnet …</c> commands there word for word
/// (only the output folder differs) with an empty NuGet package folder of their own, as on a clean image builder
/// (a package that only this machine's cache holds, or one the restore forgot, fails here as it would in
/// <c>docker build</c>), and starts the published output (a Native AOT executable) the way its <c>ENTRYPOINT</c>
/// does, with the environment the image and Cloud Run give it (<c>PORT</c>, <c>REDISHOST</c>/<c>REDISPORT</c>,
/// <c>DOTNET_RUNNING_IN_CONTAINER</c>): once on Redis, once on the in-process bus. If the Dockerfile changes, this
/// test runs the changed command. The native toolchain the publish links with (clang, zlib1g-dev) is what the
/// build stage's <c>-aot</c> SDK image adds; scripts/test.sh installs it here.
/// </summary>
[NonParallelizable]
public sealed partial class PublishedOutputTests
{
    private static readonly string[] s_severities = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

    [Test]
    public void Dockerfile_builds_in_the_aot_sdk_image_and_runs_only_the_native_output_on_runtime_deps_as_a_non_root_user()
    {
        var dockerfile = File.ReadAllText(RepositoryFiles.PathOf("Dockerfile"));
        var stages = FromLine().Matches(dockerfile).Select(m => m.Groups[1].Value).ToList();

        Assert.That(stages, Has.Count.EqualTo(2));
        Assert.That(stages[0], Does.StartWith("mcr.microsoft.com/dotnet/sdk:10.0").And.EndWith("-aot"), "the SDK variant with the native toolchain");
        Assert.That(stages[1], Does.StartWith("mcr.microsoft.com/dotnet/runtime-deps:10.0"), "a native executable needs no .NET runtime");
        Assert.That(stages[1], Does.EndWith(stages[0].Split('-')[^2]), "the same distribution release as the build, for its C library");
        var final = dockerfile[dockerfile.LastIndexOf("FROM ", StringComparison.Ordinal)..];
        Assert.That(final, Does.Contain("COPY --from=build /app ./"));
        Assert.That(final, Does.Not.Match(@"(?m)^COPY (?!--from=build)"), "the final image gets nothing but the published output");
        Assert.That(final, Does.Match(@"(?m)^USER \$APP_UID\s*$"));
        Assert.That(final, Does.Match(@"(?m)^WORKDIR /app\s*$"));
        Assert.That(final, Does.Contain("ENTRYPOINT [\"/app/ChatServer\"]"));
        Assert.That(File.ReadAllText(RepositoryFiles.PathOf(".dockerignore")), Does.Contain("**/bin/").And.Contain("**/obj/").And.Contain("ChatServer.Tests/"));
    }

    [Test, CancelAfter(420_000)]
    public async Task Published_output_started_like_the_image_serves_health_the_page_and_chat_and_logs_json(CancellationToken cancellationToken)
    {
        var dockerfile = File.ReadAllText(RepositoryFiles.PathOf("Dockerfile"));
        var publish = PublishLine().Match(dockerfile);
        var entrypoint = JsonSerializer.Deserialize<string[]>(EntrypointLine().Match(dockerfile).Groups[1].Value)!;
        Assert.That(publish.Success, Is.True, "the Dockerfile has a RUN dotnet publish ... -o /app line");
        Assert.That(entrypoint, Is.EqualTo(new[] { "/app/ChatServer" }));

        var output = Directory.CreateTempSubdirectory("chat-publish-");
        var context = Directory.CreateTempSubdirectory("chat-build-");
        var packages = Directory.CreateTempSubdirectory("chat-nuget-");
        try
        {
            var buildStage = dockerfile[..dockerfile.LastIndexOf("FROM ", StringComparison.Ordinal)];
            foreach (Match copy in CopyLine().Matches(buildStage))
            {
                var words = copy.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                foreach (var source in words[..^1])
                {
                    CopyIntoContext(source, words[^1], context.FullName);
                }
            }

            // The build stage's dotnet commands, in order, word for word but for the output folder, from an empty
            // package folder: the SDK image starts with none.
            var runs = DotnetRunLine().Matches(buildStage);
            Assert.That(runs.Select(r => r.Groups[1].Value), Has.Some.StartWith("restore ").And.Some.StartWith("publish "));
            foreach (Match run in runs)
            {
                var arguments = run.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                    .Select(a => a == "/app" ? output.FullName : a).ToArray();
                var (exitCode, log) = await RunAsync("dotnet", arguments, context.FullName, packages.FullName, cancellationToken);
                Assert.That(exitCode, Is.Zero, $"dotnet {string.Join(' ', arguments)}\n{log}");
            }

            Assert.That(File.Exists(Path.Combine(output.FullName, "wwwroot", "index.html")), Is.True);
            Assert.That(Directory.Exists(Path.Combine(output.FullName, "ChatServer.Tests")), Is.False);
            // Native AOT: one executable, no managed assemblies for a runtime to load, and its debug symbols kept out
            // of the image.
            Assert.That(File.ReadAllBytes(Path.Combine(output.FullName, "ChatServer"))[..4], Is.EqualTo("\u007fELF"u8.ToArray()));
            Assert.That(Directory.GetFiles(output.FullName, "*.dll"), Is.Empty);
            Assert.That(Directory.GetFiles(output.FullName, "*.dbg"), Is.Empty);

            // The ENTRYPOINT's path inside the image is the output folder here.
            var executable = Path.Combine(output.FullName, Path.GetRelativePath("/app", entrypoint[0]));
            await RunPublishedAsync(output.FullName, [executable, .. entrypoint[1..]], redis: true, cancellationToken);
            await RunPublishedAsync(output.FullName, [executable, .. entrypoint[1..]], redis: false, cancellationToken);
            await RunPublishedWithTokensAsync(output.FullName, [executable, .. entrypoint[1..]], cancellationToken);
        }
        finally
        {
            output.Delete(recursive: true);
            context.Delete(recursive: true);
            packages.Delete(recursive: true);
        }
    }

    /// <summary>This room's archived messages (the reconciler also copies the shared test Redis's other rooms).</summary>
    private static async Task<long> ArchivedAsync(Npgsql.NpgsqlConnection database, string room, CancellationToken cancellationToken)
    {
        await using var count = new Npgsql.NpgsqlCommand("select count(*) from chat_messages where room = $1", database);
        count.Parameters.Add(new Npgsql.NpgsqlParameter { Value = room });
        try
        {
            return (long)(await count.ExecuteScalarAsync(cancellationToken))!;
        }
        catch (Npgsql.PostgresException)
        {
            return 0;   // the server has not created its tables yet
        }
    }

    /// <summary>Docker's COPY of a file or folder from the repository into the build context (bin/ and obj/ are ignored, as in .dockerignore).</summary>
    private static void CopyIntoContext(string source, string destination, string context)
    {
        var from = RepositoryFiles.PathOf(source.TrimEnd('/'));
        var to = Path.Combine(context, destination.TrimStart('.', '/'));
        if (File.Exists(from))
        {
            var target = destination.EndsWith('/') ? Path.Combine(to, Path.GetFileName(from)) : to;
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(from, target, overwrite: true);
            return;
        }

        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (relative.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            {
                continue;
            }

            var target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    /// <summary>
    /// Starts the published output as the ENTRYPOINT does on <paramref name="port"/>, with nothing inherited that the
    /// image would not have and <paramref name="environment"/> added; its console lines go to the two lists.
    /// </summary>
    private static Process StartPublished(string directory, string[] entrypoint, int port, IReadOnlyDictionary<string, string> environment,
        List<string> stdout, List<string> stderr)
    {
        var info = new ProcessStartInfo(entrypoint[0])
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in entrypoint.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var inherited in new[] { "ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT", "ASPNETCORE_URLS", "Redis__Configuration", "REDISHOST", "REDISPORT" })
        {
            info.Environment.Remove(inherited);
        }

        info.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var server = Process.Start(info)!;
        server.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.Add(e.Data); } } };
        server.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.Add(e.Data); } } };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        return server;
    }

    private static async Task RunPublishedAsync(string directory, string[] entrypoint, bool redis, CancellationToken cancellationToken)
    {
        var port = FreePort();
        // What the runtime-deps image sets, then what Cloud Run and the deploy command set.
        var environment = new Dictionary<string, string> { ["DOTNET_RUNNING_IN_CONTAINER"] = "true", ["ASPNETCORE_HTTP_PORTS"] = "8080" };
        if (redis)
        {
            var endpoint = TestRedis.ConnectionString.Split(',')[0];
            environment["REDISHOST"] = endpoint[..endpoint.LastIndexOf(':')];
            environment["REDISPORT"] = endpoint[(endpoint.LastIndexOf(':') + 1)..];
            environment["History__ConnectionString"] = await TestPostgres.CreateDatabaseAsync("published", cancellationToken);
            environment["Api__Keys__0"] = PublishedApiKey;
        }

        var stdout = new List<string>();
        var stderr = new List<string>();
        using var server = StartPublished(directory, entrypoint, port, environment, stdout, stderr);
        try
        {
            var baseUri = new Uri($"http://127.0.0.1:{port}/");
            using var http = new HttpClient { BaseAddress = baseUri };
            await WaitUntilHealthyAsync(http, server, cancellationToken);

            Assert.That((await http.GetAsync("/readyz", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK), redis ? "Redis from REDISHOST/REDISPORT" : "in-process");
            using var page = await http.GetAsync("/", cancellationToken);
            var html = await page.Content.ReadAsStringAsync(cancellationToken);
            Assert.That(page.Headers.GetValues("Content-Security-Policy").Single(), Does.Contain("connect-src 'self'"));
            foreach (var required in new[] { "id=\"signin\"", "id=\"name\"", "id=\"room\"", "class=\"signin\"", "id=\"chat\"", "id=\"msg\"",
                         "class=\"send\"", "id=\"messages\"", "id=\"chatroom\"", "src=\"app.js\"" })
            {
                Assert.That(html, Does.Contain(required));
            }

            Assert.That((await http.GetAsync("/chat-client.js", cancellationToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));

            var socketUri = new UriBuilder(baseUri) { Scheme = "ws", Path = "/ws" }.Uri;
            var room = TestNames.Room("published");
            await using var client = await ChatClient.SignInAsync(socketUri, "alice", room, cancellationToken);
            var sent = await client.RequestAsync(new { type = "sendMessage", text = "from the published build" }, cancellationToken);
            Assert.That(sent.Ok, Is.True, sent.Raw);
            var message = await client.ExpectAsync(f => f.Type == "message", cancellationToken);
            Assert.That((message.User, message.Text), Is.EqualTo(("alice", "from the published build")));
            if (redis)
            {
                // Npgsql in the native build: the message reaches the history database, and search reads it back.
                await using var database = new Npgsql.NpgsqlConnection(environment["History__ConnectionString"]);
                await database.OpenAsync(cancellationToken);
                while (await ArchivedAsync(database, room, cancellationToken) == 0)
                {
                    await Task.Delay(50, cancellationToken);
                }

                var found = await client.RequestAsync(new { type = "search", q = "published" }, cancellationToken);
                Assert.That(found.Messages.Select(m => m.Text), Is.EqualTo(new[] { "from the published build" }), found.Raw);

                await CheckServerApiAsync(http, client, message, cancellationToken);
            }

            // The metrics pipeline (OpenTelemetry, the Prometheus exporter) works in the native build: the message
            // just sent is counted.
            var metrics = await http.GetStringAsync("/metrics", cancellationToken);
            Assert.That(metrics, Does.Match(@"(?m)^chat_frames_received_total\{[^}]*type=""sendMessage""[^}]*\} 1\b"), metrics);

            // SIGTERM, as Cloud Run sends it: open sockets are closed with 1012 and the process exits cleanly.
            using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(cancellationToken);
            }

            Assert.That(await client.WaitForCloseAsync(cancellationToken), Is.EqualTo((WebSocketCloseStatus)1012));
            await server.WaitForExitAsync(cancellationToken);
            Assert.That(server.ExitCode, Is.Zero);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync(CancellationToken.None);
            }
        }

        // Every console line is one JSON object Cloud Logging can read.
        List<string> lines;
        lock (stdout)
        {
            lines = [.. stdout];
        }

        Assert.That(lines, Is.Not.Empty);
        foreach (var line in lines)
        {
            using var entry = JsonDocument.Parse(line);
            Assert.That(entry.RootElement.GetProperty("severity").GetString(), Is.AnyOf(s_severities), line);
            Assert.That(entry.RootElement.GetProperty("message").GetString(), Is.Not.Empty, line);
            Assert.That(entry.RootElement.GetProperty("category").GetString(), Is.Not.Empty, line);
        }

        Assert.That(lines, Has.Some.Contains("\"severity\":\"INFO\"").And.Contains(redis ? "Rooms: Redis at" : "Rooms: in-process bus")
            .And.Contains("\"category\":\"ChatServer.Hosting.RedisConnection\""));
        Assert.That(lines, Has.Some.Contains($"Now listening on: http://0.0.0.0:{port}"));
        Assert.That(stderr, Is.Empty);
    }

    private const string PublishedApiKey = "published-build-api-key-0123456789";

    /// <summary>
    /// The server API in the native build (source-generated JSON, the request-delegate generator, problem+json, the
    /// OpenAPI document from Microsoft.AspNetCore.OpenApi): the document lists the endpoints; a post with the key is
    /// delivered to the member like a sendMessage, its repeat with the same idempotency key is the first one; a refusal
    /// and a bad field are problem+json with the protocol's sentence.
    /// </summary>
    private static async Task CheckServerApiAsync(HttpClient http, ChatClient member, Frame first, CancellationToken cancellationToken)
    {
        using var document = JsonDocument.Parse(await http.GetStringAsync("/api/openapi.json", cancellationToken));
        var paths = document.RootElement.GetProperty("paths");
        Assert.That(document.RootElement.GetProperty("openapi").GetString(), Does.StartWith("3."));
        Assert.That(paths.EnumerateObject().Select(p => p.Name),
            Is.SupersetOf(new[] { "/api/rooms/{room}/messages", "/api/rooms/{room}/messages/{epoch}/{seq}", "/api/users/{user}/messages" }));
        Assert.That(paths.GetProperty("/api/rooms/{room}/messages").TryGetProperty("post", out var post) && post.TryGetProperty("requestBody", out _), Is.True);

        var room = Uri.EscapeDataString(first.Room!);
        using var refused = await http.PostAsync($"/api/rooms/{room}/messages",
            new StringContent("""{"user":"deploy-bot","text":"no key"}""", System.Text.Encoding.UTF8, "application/json"), cancellationToken);
        Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(refused.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));

        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", PublishedApiKey);
        using var bad = await http.PostAsync($"/api/rooms/{room}/messages",
            new StringContent("""{"user":"deploy-bot","text":7}""", System.Text.Encoding.UTF8, "application/json"), cancellationToken);
        Assert.That(bad.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(await bad.Content.ReadAsStringAsync(cancellationToken), Does.Contain("Field 'text' must be a string."));

        var body = """{"user":"deploy-bot","text":"posted through the API","key":"published-1"}""";
        using var created = await http.PostAsync($"/api/rooms/{room}/messages", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), cancellationToken);
        var createdJson = await created.Content.ReadAsStringAsync(cancellationToken);
        Assert.That(created.StatusCode, Is.EqualTo(HttpStatusCode.Created), createdJson);
        var delivered = await member.ExpectAsync(f => f.Type == "message", cancellationToken);
        Assert.That((delivered.User, delivered.Text, delivered.Seq), Is.EqualTo(("deploy-bot", "posted through the API", first.Seq + 1)));
        using var again = await http.PostAsync($"/api/rooms/{room}/messages", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), cancellationToken);
        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var duplicate = JsonDocument.Parse(await again.Content.ReadAsStringAsync(cancellationToken));
        Assert.That((duplicate.RootElement.GetProperty("seq").GetInt64(), duplicate.RootElement.GetProperty("ts").GetString(),
            duplicate.RootElement.GetProperty("duplicate").GetBoolean()), Is.EqualTo((delivered.Seq, delivered.Ts, true)));

        var page = await http.GetStringAsync($"/api/rooms/{room}/messages?limit=2", cancellationToken);
        Assert.That(page, Does.Contain("\"text\":\"posted through the API\"").And.Contain("\"more\":false"));
        http.DefaultRequestHeaders.Authorization = null;
    }

    /// <summary>
    /// Sign-in with tokens in the native build: discovery, the JWKS fetch and the signature check all run trimmed and
    /// ahead-of-time compiled, against the tests' OIDC issuer (RS256 and ES256 tokens, and one it must refuse).
    /// </summary>
    private static async Task RunPublishedWithTokensAsync(string directory, string[] entrypoint, CancellationToken cancellationToken)
    {
        await using var issuer = await TestIssuer.StartAsync();
        var port = FreePort();
        var environment = new Dictionary<string, string>
        {
            ["Auth__Authority"] = issuer.Authority,
            ["Auth__Audience"] = TestIssuer.Audience,
            ["Auth__RequireHttpsMetadata"] = "false",
            ["Api__Audience"] = "https://chat.example.test",
            ["Api__Issuer"] = issuer.Authority,
            ["Api__RequireHttpsMetadata"] = "false",
            ["Api__AllowedCallers__0"] = "deploy@example.iam.gserviceaccount.com",
        };
        var output = new List<string>();
        using var server = StartPublished(directory, entrypoint, port, environment, output, output);
        try
        {
            var baseUri = new Uri($"http://127.0.0.1:{port}/");
            using var http = new HttpClient { BaseAddress = baseUri };
            await WaitUntilHealthyAsync(http, server, cancellationToken);
            Assert.That(await http.GetStringAsync("/auth/config", cancellationToken), Does.Contain("\"required\":true"));

            var socketUri = new UriBuilder(baseUri) { Scheme = "ws", Path = "/ws" }.Uri;
            var room = TestNames.Room("published-auth");
            foreach (var alg in new[] { SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256 })
            {
                await using var client = await ChatClient.ConnectAsync(socketUri, cancellationToken);
                var auth = await client.RequestAsync(new { type = "auth", token = issuer.Mint("Alice Doe", alg: alg) }, cancellationToken);
                Assert.That(auth.Ok, Is.True, $"{alg}: {auth.Raw}\n{string.Join('\n', output)}");
                Assert.That(auth.User, Is.EqualTo("Alice Doe"));
                Assert.That((await client.RequestAsync(new { type = "signin", room }, cancellationToken)).Ok, Is.True);
                var sent = await client.RequestAsync(new { type = "sendMessage", text = alg }, cancellationToken);
                Assert.That(sent.Ok, Is.True, sent.Raw);
                Assert.That((await client.ExpectAsync(f => f.Type == "message", cancellationToken)).User, Is.EqualTo("Alice Doe"));
            }

            await using var mallory = await ChatClient.ConnectAsync(socketUri, cancellationToken);
            var refused = await mallory.RequestAsync(new { type = "auth", token = issuer.MintWithBadSignature() }, cancellationToken);
            Assert.That(refused.Ok, Is.False, refused.Raw);

            // The server API with an ID token of an allowed caller (the same discovery and JWKS code, its own issuer settings).
            using var post = new HttpRequestMessage(HttpMethod.Post, $"/api/rooms/{room}/messages")
            {
                Content = new StringContent("""{"user":"deploy-bot","text":"by ID token"}""", System.Text.Encoding.UTF8, "application/json"),
            };
            post.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", issuer.Mint(null, audience: "https://chat.example.test",
                claims: new Dictionary<string, object> { ["email"] = "deploy@example.iam.gserviceaccount.com", ["email_verified"] = true }, anyRoom: false));
            using var posted = await http.SendAsync(post, cancellationToken);
            Assert.That(posted.StatusCode, Is.EqualTo(HttpStatusCode.Created), await posted.Content.ReadAsStringAsync(cancellationToken) + string.Join('\n', output));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static async Task WaitUntilHealthyAsync(HttpClient http, Process server, CancellationToken cancellationToken)
    {
        while (true)
        {
            Assert.That(server.HasExited, Is.False, "the published server exited at start");
            try
            {
                using var response = await http.GetAsync("/healthz", cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            await Task.Delay(100, cancellationToken);   // poll interval; the test's token is the deadline
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] arguments, string directory, string packages,
        CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["NUGET_PACKAGES"] = packages;
        // A build server started by another build would serve this one from its own caches: not a clean builder.
        info.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        info.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [GeneratedRegex(@"(?m)^FROM (\S+)")]
    private static partial Regex FromLine();

    [GeneratedRegex(@"(?m)^RUN dotnet (publish .*-o /app.*)$")]
    private static partial Regex PublishLine();

    [GeneratedRegex(@"(?m)^COPY (?!--)(.+?)\s*$")]
    private static partial Regex CopyLine();

    [GeneratedRegex(@"(?m)^RUN dotnet (.+?)\s*$")]
    private static partial Regex DotnetRunLine();

    [GeneratedRegex(@"(?m)^ENTRYPOINT (\[.*\])\s*$")]
    private static partial Regex EntrypointLine();
}
