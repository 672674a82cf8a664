using System.Text.Json;
using ChatServer.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChatServer.Tests.Hosting;

public sealed class CloudLoggingFormatterTests
{
    [TestCase(LogLevel.Debug, "DEBUG")]
    [TestCase(LogLevel.Information, "INFO")]
    [TestCase(LogLevel.Warning, "WARNING")]
    [TestCase(LogLevel.Error, "ERROR")]
    [TestCase(LogLevel.Critical, "CRITICAL")]
    public void Writes_one_json_line_with_cloud_loggings_severity_message_category_and_named_holes(LogLevel level, string severity)
    {
        IReadOnlyList<KeyValuePair<string, object?>> state =
        [
            new("Room", "general"),
            new("{OriginalFormat}", "Room {Room} said \"hi\""),
        ];
        var exception = level >= LogLevel.Error ? new InvalidOperationException("boom") : null;
        var entry = new LogEntry<IReadOnlyList<KeyValuePair<string, object?>>>(level, "ChatServer.Rooms", new EventId(7), state, exception,
            (_, _) => "Room general said \"hi\"\nsecond line");
        using var writer = new StringWriter();

        new CloudLoggingFormatter().Write(entry, null, writer);

        var lines = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), "one object per line, newlines escaped inside it");
        var json = JsonDocument.Parse(lines[0]).RootElement;
        Assert.That(json.GetProperty("severity").GetString(), Is.EqualTo(severity));
        Assert.That(json.GetProperty("message").GetString(), Does.StartWith("Room general said \"hi\"\nsecond line"));
        Assert.That(json.GetProperty("category").GetString(), Is.EqualTo("ChatServer.Rooms"));
        Assert.That(json.GetProperty("eventId").GetInt32(), Is.EqualTo(7));
        Assert.That(json.GetProperty("fields").GetProperty("Room").GetString(), Is.EqualTo("general"));
        Assert.That(json.GetProperty("fields").TryGetProperty("{OriginalFormat}", out _), Is.False);
        Assert.That(json.GetProperty("message").GetString(), exception is null ? Does.Not.Contain("boom") : Does.Contain("InvalidOperationException: boom"));
    }
}
