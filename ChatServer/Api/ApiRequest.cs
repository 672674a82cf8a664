using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing.Patterns;

namespace ChatServer.Api;

/// <summary>
/// Reading a server API request the way docs/API.md says: path segments as the caller escaped them, JSON bodies of at
/// most <see cref="MaxBodyBytes"/>, query integers with the protocol's sentences; every refusal a problem+json answer.
/// </summary>
internal static class ApiRequest
{
    /// <summary>Largest body accepted (16 KiB); larger: 413.</summary>
    public const int MaxBodyBytes = 16 * 1024;

    private static readonly JsonDocumentOptions s_documentOptions = new() { MaxDepth = 64 };

    /// <summary>A problem+json answer whose <c>detail</c> is <paramref name="detail"/>.</summary>
    public static ProblemHttpResult Problem(int status, string detail) => TypedResults.Problem(detail: detail, statusCode: status);

    /// <summary>
    /// Route parameter <paramref name="name"/> exactly as the caller escaped it. The server's path is decoded except for
    /// <c>%2F</c>, so a room named <c>a/b</c> (sent as <c>a%2Fb</c>) and one named <c>a%2Fb</c> (sent as
    /// <c>a%252Fb</c>) would read alike; the request line tells them apart. <paramref name="bound"/> (the route value)
    /// when the request line does not line up with the route.
    /// </summary>
    public static string Segment(HttpContext context, string name, string bound)
    {
        if (context.GetEndpoint() is not RouteEndpoint endpoint || context.Request.PathBase.HasValue
            || context.Features.Get<IHttpRequestFeature>()?.RawTarget is not { } raw || !raw.StartsWith('/'))
        {
            return bound;
        }

        var pattern = endpoint.RoutePattern.PathSegments;
        var index = -1;
        for (var i = 0; i < pattern.Count; i++)
        {
            if (pattern[i].Parts is [RoutePatternParameterPart parameter] && parameter.Name == name)
            {
                index = i;
            }
        }

        var query = raw.IndexOf('?', StringComparison.Ordinal);
        var segments = (query < 0 ? raw : raw[..query])[1..].Split('/');
        return index >= 0 && segments.Length == pattern.Count ? Uri.UnescapeDataString(segments[index]) : bound;
    }

    /// <summary>
    /// The request's body as one JSON object; else the answer to give: 415 (not JSON), 413 (over 16 KiB), 400 (not
    /// valid JSON, or not an object).
    /// </summary>
    public static async Task<(JsonDocument? Body, ProblemHttpResult? Error)> ReadObjectAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!request.HasJsonContentType())
        {
            return (null, Problem(StatusCodes.Status415UnsupportedMediaType, "Send the body as JSON, with Content-Type: application/json."));
        }

        var tooLarge = Problem(StatusCodes.Status413PayloadTooLarge, $"The body must be at most {MaxBodyBytes} bytes (16 KiB).");
        if (request.ContentLength > MaxBodyBytes)
        {
            return (null, tooLarge);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(MaxBodyBytes + 1);
        try
        {
            var length = 0;
            int read;
            while (length <= MaxBodyBytes && (read = await request.Body.ReadAsync(buffer.AsMemory(length, MaxBodyBytes + 1 - length), cancellationToken)) > 0)
            {
                length += read;
            }

            if (length > MaxBodyBytes)
            {
                return (null, tooLarge);
            }

            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(buffer.AsSpan(0, length).ToArray(), s_documentOptions);   // the pooled buffer goes back
            }
            catch (JsonException)
            {
                return (null, Problem(StatusCodes.Status400BadRequest, "The body is not valid JSON: send one UTF-8 JSON object."));
            }

            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                return (null, Problem(StatusCodes.Status400BadRequest, "The body must be a JSON object."));
            }

            return (document, null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A query integer in <paramref name="min"/>..<paramref name="max"/>: <c>null</c> when absent or empty, else the
    /// value, or false when it is not one (the caller answers with the protocol's sentence for that field).
    /// </summary>
    public static bool TryReadInteger(string? text, long min, long max, out long? value)
    {
        value = null;
        if (string.IsNullOrEmpty(text))
        {
            return true;
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < min || number > max)
        {
            return false;
        }

        value = number;
        return true;
    }
}
