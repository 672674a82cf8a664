using StackExchange.Redis;

namespace ChatServer.Rooms;

internal static class RedisCalls
{
    /// <summary>
    /// Turns "Redis is not there" into the one exception the session answers with <c>ok:false</c>. A command the client
    /// library had sent (or cannot say it had not) when the connection broke or the timeout passed may have run: its
    /// outcome is unknown. One still waiting to be sent, or refused by Redis, changed nothing.
    /// </summary>
    public static async Task<T> Run<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (RedisConnectionException ex)
        {
            throw new StoreUnavailableException("Redis did not complete the operation.", ex, MayHaveRun(ex.CommandStatus));
        }
        catch (RedisTimeoutException ex)
        {
            throw new StoreUnavailableException("Redis did not answer in time.", ex, MayHaveRun(ex.Commandstatus));
        }
        catch (RedisServerException ex)
        {
            throw new StoreUnavailableException("Redis refused the operation.", ex);
        }
    }

    private static bool MayHaveRun(CommandStatus status) => status is not (CommandStatus.WaitingToBeSent or CommandStatus.WaitingInBacklog);
}
