using StackExchange.Redis;

namespace ChatServer.Rooms;

internal static class RedisCalls
{
    /// <summary>Turns "Redis is not there" into the one exception the session answers with <c>ok:false</c>.</summary>
    public static async Task<T> Run<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException or RedisServerException)
        {
            throw new StoreUnavailableException("Redis did not complete the operation.", ex);
        }
    }
}
