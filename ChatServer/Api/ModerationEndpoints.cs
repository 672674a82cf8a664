using System.Globalization;
using System.Text.Json;
using ChatServer.Moderation;
using ChatServer.Protocol;
using ChatServer.Rooms;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace ChatServer.Api;

/// <summary>
/// docs/API.md's moderation endpoints: who is in a room (with their connections across instances), kicks (every
/// connection of a user in a room closed with 4003 on every instance, through <see cref="IModerationBus"/>), and bans
/// (stored in <see cref="IBanStore"/>, refused at every instance's sign-in until they end).
/// </summary>
internal static class ModerationEndpoints
{
    /// <summary>The Close reason when the operator gives none.</summary>
    public const string DefaultReason = "removed from the room";

    /// <summary>Longest reason kept with a kick or a ban, in characters (a Close frame carries at most 123 bytes of it).</summary>
    public const int MaxReasonLength = 200;

    public static RouteGroupBuilder MapModerationEndpoints(this RouteGroupBuilder api)
    {
        var room = api.MapGroup("/rooms/{room}").WithTags("moderation");
        room.MapGet("/members", MembersAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Each user in the room with their open connections, across all instances.");
        room.MapPost("/kick", KickAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Closes every connection of the user in the room, on every instance, with status 4003.");
        room.MapPut("/bans/{user}", BanAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Bans the user from the room until `until` (or until lifted) and kicks them.");
        room.MapDelete("/bans/{user}", LiftAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Lifts the user's ban from the room.");
        room.MapGet("/bans", BansAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("The room's bans in force.");
        return api;
    }

    private static async Task<Results<Ok<RoomMembers>, ProblemHttpResult>> MembersAsync(HttpContext context, string room,
        [FromServices] FrameValidator validator, [FromServices] IModerationBus bus)
    {
        if (validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var name) is { } error)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, error);
        }

        try
        {
            var members = await bus.ConnectionsAsync(name);
            return TypedResults.Ok(new RoomMembers { Room = name, Members = [.. members.Select(m => new MemberInRoom { User = m.User, Connections = m.Connections })] });
        }
        catch (StoreUnavailableException ex)
        {
            return Unavailable(ex);
        }
    }

    private static async Task<Results<Ok<KickResult>, ProblemHttpResult>> KickAsync(HttpContext context, string room,
        [FromServices] FrameValidator validator, [FromServices] IModerationBus bus)
    {
        if (validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var name) is { } roomError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, roomError);
        }

        var (body, bodyError) = await ApiRequest.ReadObjectAsync(context.Request, context.RequestAborted);
        if (body is null)
        {
            return bodyError!;
        }

        string user;
        string? reason = null;
        using (body)
        {
            if (!FrameParser.TryReadString(body.RootElement, "user", out var rawUser, out var error))
            {
                return ApiRequest.Problem(StatusCodes.Status400BadRequest, error);
            }

            if ((validator.ValidateUser(rawUser, out user) ?? ReadReason(body.RootElement, out reason)) is { } fieldError)
            {
                return ApiRequest.Problem(StatusCodes.Status400BadRequest, fieldError);
            }
        }

        try
        {
            return TypedResults.Ok(new KickResult { Closed = await bus.KickAsync(name, user, reason ?? DefaultReason) });
        }
        catch (StoreUnavailableException ex)
        {
            return Unavailable(ex);
        }
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> BanAsync(HttpContext context, string room, string user,
        [FromServices] FrameValidator validator, [FromServices] IBanStore bans, [FromServices] IModerationBus bus, [FromServices] TimeProvider time)
    {
        var roomError = validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var name);
        var userError = validator.ValidateUser(ApiRequest.Segment(context, "user", user), out var banned);
        if ((roomError ?? userError) is { } pathError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, pathError);
        }

        var (body, bodyError) = await ApiRequest.ReadObjectAsync(context.Request, context.RequestAborted);
        if (body is null)
        {
            return bodyError!;
        }

        DateTimeOffset? until = null;
        string? reason;
        using (body)
        {
            var root = body.RootElement;
            if (ReadReason(root, out reason) is { } reasonError)
            {
                return ApiRequest.Problem(StatusCodes.Status400BadRequest, reasonError);
            }

            if (root.TryGetProperty("until", out var value) && value.ValueKind != JsonValueKind.Null)
            {
                if (value.ValueKind != JsonValueKind.String || !value.TryGetDateTimeOffset(out var at) || at <= time.GetUtcNow())
                {
                    return ApiRequest.Problem(StatusCodes.Status400BadRequest, UntilError);
                }

                until = at.ToUniversalTime();
            }
        }

        try
        {
            await bans.SetAsync(name, new Ban(banned, until, reason));
            await bus.KickAsync(name, banned, reason ?? DefaultReason);
            return TypedResults.NoContent();
        }
        catch (StoreUnavailableException ex)
        {
            return Unavailable(ex);
        }
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> LiftAsync(HttpContext context, string room, string user,
        [FromServices] FrameValidator validator, [FromServices] IBanStore bans)
    {
        var roomError = validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var name);
        var userError = validator.ValidateUser(ApiRequest.Segment(context, "user", user), out var banned);
        if ((roomError ?? userError) is { } pathError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, pathError);
        }

        try
        {
            await bans.RemoveAsync(name, banned);
            return TypedResults.NoContent();
        }
        catch (StoreUnavailableException ex)
        {
            return Unavailable(ex);
        }
    }

    private static async Task<Results<Ok<RoomBans>, ProblemHttpResult>> BansAsync(HttpContext context, string room,
        [FromServices] FrameValidator validator, [FromServices] IBanStore bans)
    {
        if (validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var name) is { } error)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, error);
        }

        try
        {
            var list = await bans.ListAsync(name);
            return TypedResults.Ok(new RoomBans
            {
                Bans = [.. list.Select(b => new RoomBan
                {
                    User = b.User,
                    Until = b.Until?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    Reason = b.Reason,
                })],
            });
        }
        catch (StoreUnavailableException ex)
        {
            return Unavailable(ex);
        }
    }

    private const string UntilError = "Field 'until' must be a future time, ISO 8601 with an offset (2026-12-31T00:00:00Z), or be omitted (until lifted).";

    /// <summary><c>reason</c>: absent, or a string of at most <see cref="MaxReasonLength"/> characters without control characters.</summary>
    private static string? ReadReason(JsonElement root, out string? reason)
    {
        if (!FrameParser.TryReadString(root, "reason", out reason, out var error))
        {
            return error;
        }

        reason = string.IsNullOrWhiteSpace(reason) ? null : reason.Trim();
        return reason is not null && (reason.Length > MaxReasonLength || reason.Any(char.IsControl))
            ? $"Field 'reason' must be at most {MaxReasonLength} characters, without control characters."
            : null;
    }

    /// <summary>Redis (which holds bans and carries kicks) could not be reached.</summary>
    private static ProblemHttpResult Unavailable(StoreUnavailableException ex) =>
        ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable,
            ex.OutcomeUnknown ? "The store did not answer; the change may or may not have been made. Try again." : "The store is unavailable; nothing was changed. Try again shortly.");
}

/// <summary><c>GET …/members</c>: each user once, with their open connections across instances.</summary>
internal sealed class RoomMembers
{
    public required string Room { get; init; }

    public required IReadOnlyList<MemberInRoom> Members { get; init; }
}

internal sealed class MemberInRoom
{
    public required string User { get; init; }

    public int Connections { get; init; }
}

/// <summary><c>POST …/kick</c>: how many connections were closed.</summary>
internal sealed class KickResult
{
    public int Closed { get; init; }
}

/// <summary><c>GET …/bans</c>.</summary>
internal sealed class RoomBans
{
    public required IReadOnlyList<RoomBan> Bans { get; init; }
}

internal sealed class RoomBan
{
    public required string User { get; init; }

    /// <summary>When it ends; absent: until lifted.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Until { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Reason { get; init; }
}
