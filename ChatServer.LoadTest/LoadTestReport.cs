using System.Text.Json.Serialization;

namespace ChatServer.LoadTest;

/// <summary>
/// The JSON result file: what ran, where, and every figure; with <c>--baseline-exe</c>/<c>--baseline-dll</c>, the
/// earlier build's beside ours, and with <c>--peer</c>/<c>--peers</c>, each peer's.
/// </summary>
internal sealed class LoadTestReport
{
    public required string Mode { get; init; }

    public required string Command { get; init; }

    public required MachineInfo Machine { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public required ScenarioReport Ours { get; init; }

    /// <summary>The baseline build's figures (<see cref="ScenarioReport.ServerPath"/> says which file); null without one.</summary>
    public ScenarioReport? Baseline { get; set; }

    /// <summary>The peers' figures, in the order they ran (<see cref="ScenarioReport.Server"/> names each); null without peers.</summary>
    public List<ScenarioReport>? Peers { get; set; }

    /// <summary><c>fanout --archive-ab</c>: the run with the archive on (<see cref="Ours"/> is the run with it off).</summary>
    public ScenarioReport? ArchiveOn { get; set; }
}

/// <summary>One server implementation's figures for the scenario.</summary>
internal sealed class ScenarioReport
{
    public required string Server { get; init; }

    /// <summary>For ours and the baseline when started here: the executable or <c>ChatServer.dll</c> that was started.</summary>
    public string? ServerPath { get; init; }

    public List<double> ColdStartsMs { get; init; } = [];

    public List<FanoutResult> Fanout { get; } = [];

    public double? HighestPassingRate { get; set; }

    public IdleResult? Idle { get; set; }

    public List<HistoryResult> History { get; } = [];

    public RoomsResult? Rooms { get; set; }

    public HistoryDbResult? HistoryDb { get; set; }
}

internal sealed record MachineInfo(int Cores, string CpuModel, string Os, string Runtime)
{
    public static MachineInfo Describe()
    {
        var model = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return new(Environment.ProcessorCount, model ?? "unknown", System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LoadTestReport))]
internal sealed partial class LoadTestJsonContext : JsonSerializerContext;
