using System.Threading.Channels;

namespace ChatServer.Rooms;

/// <summary>
/// After a channel connection is restored, every room catches up from the log: one room at a time per instance, one
/// ranged read each, cancelled on shutdown. Restores that arrive while a pass is under way (every connection and
/// endpoint reports its own) merge into one more pass. Each round runs twice, once at once and once a second later,
/// because the library may still be re-sending SUBSCRIBE when it reports the connection restored: anything
/// published in that window is in the log by the second pass.
/// </summary>
internal sealed class RoomCatchUp(IRoomChannel channel, RoomRegistry registry, TimeProvider time, ILogger<RoomCatchUp> logger)
    : BackgroundService
{
    private static readonly TimeSpan s_secondPass = TimeSpan.FromSeconds(1);

    private readonly Channel<bool> _restored = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,   // one pending round stands for any number of restores
    });

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        channel.Restored += OnRestored;
        try
        {
            while (await _restored.Reader.WaitToReadAsync(stoppingToken))
            {
                _restored.Reader.TryRead(out _);
                await PassAsync(stoppingToken);
                await Task.Delay(s_secondPass, time, stoppingToken);
                await PassAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            channel.Restored -= OnRestored;
        }
    }

    private void OnRestored() => _restored.Writer.TryWrite(true);

    private async Task PassAsync(CancellationToken stoppingToken)
    {
        foreach (var feed in registry.Rooms)
        {
            try
            {
                await feed.CatchUpAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)   // log, do not lose, and go on with the next room
            {
                RoomLog.CatchUpFailed(logger, feed.Name, ex);
            }
        }
    }
}
