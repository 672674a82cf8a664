using ChatServer.LoadTest;

namespace ChatServer.Tests.LoadTest;

/// <summary>The load tool's <c>--baseline-exe</c>/<c>--baseline-dll</c>: checked when parsed, before anything starts.</summary>
public sealed class LoadToolOptionsTests
{
    [Test]
    public void A_baseline_dll_or_exe_is_taken_as_its_full_path()
    {
        var folder = Directory.CreateTempSubdirectory("chat-baseline-").FullName;
        try
        {
            var dll = Path.Combine(folder, "ChatServer.dll");
            var exe = Path.Combine(folder, "ChatServer");
            File.WriteAllText(dll, "");
            File.WriteAllText(exe, "");

            Assert.Multiple(() =>
            {
                Assert.That(Options.Parse(["--start-servers", "2"]).Baseline, Is.Null);
                Assert.That(Options.Parse(["--baseline-dll", dll]).Baseline, Is.EqualTo(dll));
                Assert.That(Options.Parse(["--baseline-exe", exe, "--peer"]).Baseline, Is.EqualTo(exe));
            });
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void A_missing_baseline_or_one_of_the_other_kind_is_refused()
    {
        var folder = Directory.CreateTempSubdirectory("chat-baseline-").FullName;
        try
        {
            var dll = Path.Combine(folder, "ChatServer.dll");
            var exe = Path.Combine(folder, "ChatServer");
            File.WriteAllText(dll, "");
            File.WriteAllText(exe, "");

            Assert.Multiple(() =>
            {
                Assert.That(() => Options.Parse(["--baseline-exe", dll]), Throws.ArgumentException.With.Message.Contains("--baseline-dll"));
                Assert.That(() => Options.Parse(["--baseline-dll", exe]), Throws.ArgumentException.With.Message.Contains("--baseline-exe"));
                Assert.That(() => Options.Parse(["--baseline-exe", Path.Combine(folder, "gone")]), Throws.ArgumentException.With.Message.Contains("no file"));
            });
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
