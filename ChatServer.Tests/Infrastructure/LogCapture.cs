using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ChatServer.Tests;

/// <summary>Keeps every log line a host writes (after the host's level filters), for tests about logging.</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Category, string Message)> _entries = new();

    /// <summary>A snapshot: background services keep logging while a test reads.</summary>
    public IReadOnlyCollection<(LogLevel Level, string Category, string Message)> Entries => _entries.ToArray();

    public bool Contains(string fragment) => _entries.Any(e => e.Message.Contains(fragment, StringComparison.Ordinal));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogCapture capture, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            capture._entries.Enqueue((logLevel, category, formatter(state, exception) + (exception is null ? "" : " " + exception.Message)));
    }
}
