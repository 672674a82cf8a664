using System.Globalization;

namespace ChatServer.LoadTest;

/// <summary>Reads another process's CPU time and resident memory from Linux's <c>/proc</c>.</summary>
internal static class ProcStats
{
    private const double ClockTicksPerSecond = 100;   // USER_HZ: 100 on every Linux the tool targets

    /// <summary>User plus system CPU seconds so far (fields 14 and 15 of <c>/proc/&lt;pid&gt;/stat</c>).</summary>
    public static double CpuSeconds(int processId)
    {
        var stat = File.ReadAllText($"/proc/{processId}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');   // the command name may hold spaces; it ends at ')'
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture))
            / ClockTicksPerSecond;
    }

    /// <summary>Resident set size in bytes (<c>VmRSS</c> of <c>/proc/&lt;pid&gt;/status</c>).</summary>
    public static long RssBytes(int processId)
    {
        foreach (var line in File.ReadLines($"/proc/{processId}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"No VmRSS for pid {processId}.");
    }
}
