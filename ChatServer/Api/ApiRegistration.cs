using ChatServer.History;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace ChatServer.Api;

internal static class ApiRegistration
{
    /// <summary>Where the OpenAPI document is served (public while the API is on: it describes, it holds no data).</summary>
    public const string OpenApiPath = "/api/openapi.json";

    /// <summary>
    /// The server API (docs/API.md): options validated at start, the credential check, the erasure, and the OpenAPI
    /// document. Off (nothing registered but the options) without <c>Api:Keys</c> and <c>Api:Audience</c>.
    /// </summary>
    public static WebApplicationBuilder AddChatApi(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ApiOptions>()
            .BindConfiguration(ApiOptions.Section)
            .Validate(o => o.ActiveKeys.All(k => k.Length >= ApiOptions.MinKeyLength),
                $"Api:Keys entries must be at least {ApiOptions.MinKeyLength} characters: random secrets (openssl rand -base64 32).")
            .Validate(o => !o.TokensEnabled || o.AllowedCallers.Any(c => !string.IsNullOrWhiteSpace(c)),
                "Api:AllowedCallers must name at least one caller (a service account's email) when Api:Audience is set: any Google account can get a token for any audience.")
            .Validate(o => !o.TokensEnabled || (Uri.TryCreate(o.Issuer, UriKind.Absolute, out var uri)
                    && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && !o.RequireHttpsMetadata))),
                "Api:Issuer must be an absolute https:// URL (http:// only with Api:RequireHttpsMetadata=false).")
            .Validate(o => o.KeyRefreshInterval >= TimeSpan.FromSeconds(1), "Api:KeyRefreshInterval must be at least one second.")
            .ValidateOnStart();

        var configured = new ApiOptions();
        builder.Configuration.GetSection(ApiOptions.Section).Bind(configured);
        if (!configured.Enabled)
        {
            return builder;
        }

        services.AddSingleton<ApiAuthenticator>();
        services.AddSingleton(sp => new MessageEraser(sp.GetRequiredService<Rooms.IMessageLog>(), sp.GetRequiredService<Rooms.IRoomChannel>(),
            sp.GetRequiredService<Rooms.PresenceTracker>(), sp.GetRequiredService<MessageDeleter>(), sp.GetService<HistoryDatabase>(),
            sp.GetService<ArchiveWriter>(), sp.GetService<Webhooks.WebhookOutbox>()));
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default));
        services.AddOpenApi(openApi =>
        {
            openApi.ShouldInclude = description => description.RelativePath?.StartsWith("api/", StringComparison.Ordinal) == true;
            openApi.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Chat server API",
                    Version = "1",
                    Description = "For the operator's own backend (docs/API.md). Authorization: Bearer <API key or Google ID token>. "
                        + "Errors are application/problem+json whose detail names the field or limit.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "One of Api__Keys, or an ID token for Api__Audience from a caller in Api__AllowedCallers.",
                };
                document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] }];
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    /// <summary>
    /// <c>/api</c>: the OpenAPI document, then every endpoint group behind <see cref="ApiAccessFilter"/>, one line per
    /// group. When the API is off, nothing is mapped, so every <c>/api/…</c> path is a 404 like any unknown path.
    /// </summary>
    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder endpoints)
    {
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<ApiOptions>>().Value;
        if (!options.Enabled)
        {
            return endpoints;
        }

        ApiLog.Enabled(endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(ApiLog.Category),
            options.ActiveKeys.Count(), options.TokensEnabled ? $"from {options.Issuer} for {options.Audience}" : "off");
        endpoints.MapOpenApi(OpenApiPath);
        var api = endpoints.MapGroup("/api")
            .AddEndpointFilter(ApiAccessFilter.InvokeAsync)
            .ProducesProblem(StatusCodes.Status401Unauthorized);
        api.MapMessageEndpoints();   // POST/GET /api/rooms/{room}/messages, DELETE …/{epoch}/{seq}, DELETE /api/users/{user}/messages
        api.MapModerationEndpoints();   // GET …/members, POST …/kick, PUT/DELETE …/bans/{user}, GET …/bans
        return endpoints;
    }
}
