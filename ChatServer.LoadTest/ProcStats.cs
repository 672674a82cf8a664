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

    /// <summary>
    /// CPU seconds of a process and of its direct children, the living and the ended: its own user and system time, the
    /// time of the children it has waited for (fields 16 and 17), and each living child's own (a PostgreSQL postmaster and
    /// its backends). A difference of two readings bills a backend that ended in between too (its parent reaped it).
    /// </summary>
    public static double TreeCpuSeconds(int rootProcessId)
    {
        var root = Fields(rootProcessId);
        var ticks = Long(root[11]) + Long(root[12]) + Long(root[13]) + Long(root[14]);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == rootProcessId)
            {
                continue;
            }

            try
            {
                var fields = Fields(pid);
                if (Long(fields[1]) == rootProcessId)
                {
                    ticks += Long(fields[11]) + Long(fields[12]);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // ended while we looked: its parent's reaped-children time has it
            }
        }

        return ticks / ClockTicksPerSecond;
    }

    /// <summary>The fields of <c>/proc/&lt;pid&gt;/stat</c> after the command name: [0] is the state, [1] the parent's id.</summary>
    private static string[] Fields(int processId)
    {
        var stat = File.ReadAllText($"/proc/{processId}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    }

    private static long Long(string value) => long.Parse(value, CultureInfo.InvariantCulture);

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
