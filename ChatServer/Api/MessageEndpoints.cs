using System.Globalization;
using ChatServer.Connections;
using ChatServer.History;
using ChatServer.Protocol;
using ChatServer.Rooms;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.OpenApi;

namespace ChatServer.Api;

/// <summary>
/// docs/API.md's message endpoints: post (the same operation as <c>sendMessage</c>: <see cref="MessagePoster"/>), the
/// <c>history</c>/<c>search</c> pages (<see cref="HistoryReader"/>), a moderator's delete (<see cref="MessageDeleter"/>)
/// and a user's erasure (<see cref="MessageEraser"/>). Every field is checked by the protocol's own rules and answered
/// with its own sentences (<see cref="FrameValidator"/>, <see cref="FrameParser"/>).
/// </summary>
internal static class MessageEndpoints
{
    public static RouteGroupBuilder MapMessageEndpoints(this RouteGroupBuilder api)
    {
        var rooms = api.MapGroup("/rooms/{room}/messages").WithTags("messages");
        rooms.MapPost("", PostAsync)
            .AddOpenApiOperationTransformer(async (operation, context, cancellationToken) =>
            {
                // Described here rather than with Accepts<T>: that would make routing answer a wrong Content-Type with a
                // bare 415 before the credentials are checked; the handler reads the body itself, after them.
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["application/json"] = new() { Schema = await context.GetOrCreateSchemaAsync(typeof(PostMessageRequest), null, cancellationToken) },
                    },
                };
            })
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Posts a message, exactly as a sendMessage from that user.");
        rooms.MapGet("", PageAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status501NotImplemented)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("A history page (or, with q, a search page), as the protocol's history and search frames answer.");
        rooms.MapDelete("/{epoch}/{seq}", DeleteAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Turns a message into a tombstone; the room's members get deleted.");
        api.MapDelete("/users/{user}/messages", EraseAsync)
            .WithTags("users")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithSummary("Turns every message of the user, in every room and store, into a tombstone (erasure requests).");
        return api;
    }

    private static async Task<Results<Created<PostedMessage>, Ok<PostedMessage>, ProblemHttpResult>> PostAsync(HttpContext context, string room,
        [FromServices] FrameValidator validator, [FromServices] MessagePoster poster, [FromServices] HistoryReader reader)
    {
        if (validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var roomName) is { } roomError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, roomError);
        }

        var (body, bodyError) = await ApiRequest.ReadObjectAsync(context.Request, context.RequestAborted);
        if (body is null)
        {
            return bodyError!;
        }

        string user;
        string text;
        string? key;
        using (body)
        {
            var root = body.RootElement;
            if (!FrameParser.TryReadString(root, "user", out var rawUser, out var error) || !FrameParser.TryReadString(root, "text", out var rawText, out error))
            {
                return ApiRequest.Problem(StatusCodes.Status400BadRequest, error);
            }

            if (!FrameParser.TryReadString(root, "key", out key, out _))
            {
                return ApiRequest.Problem(StatusCodes.Status400BadRequest, FrameValidator.KeyError);
            }

            if ((validator.ValidateUser(rawUser, out user) ?? validator.ValidateText(rawText) ?? FrameValidator.ValidateKey(key)) is { } fieldError)
            {
                return ApiRequest.Problem(StatusCodes.Status400BadRequest, fieldError);
            }

            text = rawText!;
        }

        Posted posted;
        try
        {
            posted = await poster.PostAsync(roomName, user, text, key);   // not cancelled: once sent, it is stored or not
        }
        catch (StoreUnavailableException ex)
        {
            return ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable,
                ex.OutcomeUnknown && key is not null ? StoreUnavailableException.UnknownOutcomeWithKeyError : ex.ClientMessage);
        }

        if (posted.Duplicate)
        {
            // The first post's place and time: its ts is read back from wherever the message is kept now.
            return TypedResults.Ok(new PostedMessage
            {
                Room = roomName, Seq = posted.Seq, Epoch = posted.Epoch, Ts = await StoredTsAsync(reader, roomName, posted), Duplicate = true,
            });
        }

        return TypedResults.Created(
            $"/api/rooms/{Uri.EscapeDataString(roomName)}/messages/{Uri.EscapeDataString(posted.Epoch)}/{posted.Seq.ToString(CultureInfo.InvariantCulture)}",
            new PostedMessage { Room = roomName, Seq = posted.Seq, Epoch = posted.Epoch, Ts = FormatTs(posted.StoredAt) });
    }

    private static async Task<string?> StoredTsAsync(HistoryReader reader, string room, Posted posted)
    {
        try
        {
            return await reader.FindAsync(room, posted.Epoch, posted.Seq, CancellationToken.None) is { } found
                ? StoredMessage.TryRead(found.Json)?.Ts
                : null;
        }
        catch (Exception ex) when (ex is StoreUnavailableException or HistoryUnavailableException)
        {
            return null;   // stored all the same; the answer just lacks its time
        }
    }

    private static string FormatTs(DateTime utc)
    {
        Span<byte> ts = stackalloc byte[MessageEncoding.TimestampLength];
        MessageEncoding.FormatTimestamp(utc, ts);
        return System.Text.Encoding.ASCII.GetString(ts);
    }

    private static async Task<Results<Ok<MessagesPage>, ProblemHttpResult>> PageAsync(HttpContext context, string room,
        [FromQuery] string? before, [FromQuery] string? epoch, [FromQuery] string? limit, [FromQuery] string? q,
        [FromServices] FrameValidator validator, [FromServices] HistoryReader reader)
    {
        if (validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var roomName) is { } roomError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, roomError);
        }

        var search = !string.IsNullOrEmpty(q);
        if (search && FrameValidator.ValidateQuery(q) is { } queryError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, queryError);
        }

        var maxLimit = search ? FrameParser.SearchPageLimit : FrameParser.HistoryPageLimit;
        if (!ApiRequest.TryReadInteger(limit, 1, maxLimit, out var pageLimit))
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, FrameValidator.LimitError(maxLimit));
        }

        if (!ApiRequest.TryReadInteger(before, 0, long.MaxValue, out var beforeSeq))
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, FrameValidator.BeforeError);
        }

        var epochValue = string.IsNullOrEmpty(epoch) ? null : epoch;
        if (search && !reader.HasDatabase)
        {
            // Not the caller's fault and not passing: this deployment has no search until it is given a database.
            return ApiRequest.Problem(StatusCodes.Status501NotImplemented, HistoryReader.SearchNeedsDatabaseError);
        }

        try
        {
            var page = search
                ? await reader.SearchAsync(roomName, q!, epochValue, beforeSeq, (int)(pageLimit ?? FrameDispatcher.DefaultSearchPage), context.RequestAborted)
                : await reader.PageAsync(roomName, epochValue, beforeSeq, (int)(pageLimit ?? FrameDispatcher.DefaultHistoryPage), context.RequestAborted);
            return TypedResults.Ok(new MessagesPage { Room = roomName, Epoch = page.Epoch, Messages = page.Messages, More = page.More });
        }
        catch (HistoryUnavailableException)
        {
            return ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable,
                search ? HistoryReader.SearchUnavailableError : HistoryReader.DatabaseUnavailableError);
        }
        catch (StoreUnavailableException ex)
        {
            return ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable, ex.ClientMessage);
        }
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(HttpContext context, string room, string epoch, string seq,
        [FromServices] FrameValidator validator, [FromServices] MessageDeleter deleter, [FromServices] ILoggerFactory loggers)
    {
        if (validator.ValidateRoom(ApiRequest.Segment(context, "room", room), out var roomName) is { } roomError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, roomError);
        }

        if (!ApiRequest.TryReadInteger(seq, 1, long.MaxValue, out var number) || number is not { } messageSeq)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, FrameValidator.SeqError);
        }

        var messageEpoch = ApiRequest.Segment(context, "epoch", epoch);
        DeleteOutcome outcome;
        try
        {
            outcome = await deleter.DeleteAsync(roomName, messageEpoch, messageSeq, author: null, DeletedBy.Api, context.RequestAborted);
        }
        catch (HistoryUnavailableException)
        {
            return ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable, HistoryReader.DeleteUnavailableError);
        }
        catch (StoreUnavailableException ex)
        {
            return ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable, ex.ClientMessage);
        }

        if (outcome is DeleteOutcome.NotFound)
        {
            return ApiRequest.Problem(StatusCodes.Status404NotFound, FrameValidator.NotInHistoryError(messageSeq, messageEpoch));
        }

        if (outcome is DeleteOutcome.Deleted)
        {
            ApiLog.Deleted(loggers.CreateLogger(ApiLog.Category), ApiAccessFilter.CallerOf(context), roomName, messageEpoch, messageSeq);
        }

        return TypedResults.NoContent();   // deleted now, or a tombstone already
    }

    private static async Task<Results<Accepted<ErasedMessages>, ProblemHttpResult>> EraseAsync(HttpContext context, string user,
        [FromServices] FrameValidator validator, [FromServices] MessageEraser eraser, [FromServices] ILoggerFactory loggers)
    {
        if (validator.ValidateUser(ApiRequest.Segment(context, "user", user), out var userName) is { } userError)
        {
            return ApiRequest.Problem(StatusCodes.Status400BadRequest, userError);
        }

        Erasure erasure;
        try
        {
            erasure = await eraser.EraseAsync(userName, context.RequestAborted);
        }
        catch (StoreUnavailableException)
        {
            return ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable, EraseStoreUnavailableError);
        }

        ApiLog.Erased(loggers.CreateLogger(ApiLog.Category), ApiAccessFilter.CallerOf(context), erasure.Deleted, erasure.Complete);
        return erasure.Complete
            ? TypedResults.Accepted((string?)null, new ErasedMessages { Deleted = erasure.Deleted })
            : ApiRequest.Problem(StatusCodes.Status503ServiceUnavailable, EraseDatabaseUnavailableError(erasure.Deleted));
    }

    internal const string EraseStoreUnavailableError =
        "The message store is unavailable; the erasure did not finish. Try again shortly: repeating an erasure is safe.";

    internal static string EraseDatabaseUnavailableError(long deleted) =>
        $"The history database is unavailable: {deleted} messages were erased, but those only the database holds were not. Try again shortly: repeating an erasure is safe.";
}
