using ChatServer.LoadTest;

namespace ChatServer.Tests.LoadTest;

/// <summary>The load tool's <c>--baseline-exe</c>/<c>--baseline-dll</c>: checked when parsed, before anything starts.</summary>
public sealed class LoadToolOptionsTests
{
    private string _folder = "";
    private string _dll = "";
    private string _exe = "";

    /// <summary>An empty <c>ChatServer.dll</c> and <c>ChatServer</c> in a folder of the test's own.</summary>
    [SetUp]
    public void MakeBuilds()
    {
        _folder = Directory.CreateTempSubdirectory("chat-baseline-").FullName;
        (_dll, _exe) = (Path.Combine(_folder, "ChatServer.dll"), Path.Combine(_folder, "ChatServer"));
        File.WriteAllText(_dll, "");
        File.WriteAllText(_exe, "");
    }

    [TearDown]
    public void RemoveBuilds() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void A_baseline_dll_or_exe_is_taken_as_its_full_path() => Assert.Multiple(() =>
    {
        Assert.That(Options.Parse(["--start-servers", "2"]).Baseline, Is.Null);
        Assert.That(Options.Parse(["--baseline-dll", _dll]).Baseline, Is.EqualTo(_dll));
        Assert.That(Options.Parse(["--baseline-exe", _exe, "--peer"]).Baseline, Is.EqualTo(_exe));
    });

    [Test]
    public void A_missing_baseline_or_one_of_the_other_kind_is_refused() => Assert.Multiple(() =>
    {
        Assert.That(() => Options.Parse(["--baseline-exe", _dll]), Throws.ArgumentException.With.Message.Contains("--baseline-dll"));
        Assert.That(() => Options.Parse(["--baseline-dll", _exe]), Throws.ArgumentException.With.Message.Contains("--baseline-exe"));
        Assert.That(() => Options.Parse(["--baseline-exe", Path.Combine(_folder, "gone")]), Throws.ArgumentException.With.Message.Contains("no file"));
    });
}
