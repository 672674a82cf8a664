using ChatServer.Hosting;
using ChatServer.Protocol;
using Microsoft.Extensions.Options;

namespace ChatServer.Tests.Protocol;

public sealed class FrameValidatorTests
{
    private readonly FrameValidator _validator = new(Options.Create(new ChatOptions()));

    [TestCase("alice", "alice")]
    [TestCase("  alice  ", "alice")]
    [TestCase("\talice\n", "alice")]
    [TestCase("Zoë Ünal", "Zoë Ünal")]
    public void Users_are_trimmed(string user, string expected)
    {
        Assert.That(_validator.ValidateUser(user, out var trimmed), Is.Null);
        Assert.That(trimmed, Is.EqualTo(expected));
    }

    [Test]
    public void Lengths_count_code_points_not_utf16_units()
    {
        var emoji32 = string.Concat(Enumerable.Repeat("😀", 32));
        Assert.That(_validator.ValidateUser(emoji32, out _), Is.Null);
        Assert.That(_validator.ValidateUser(emoji32 + "😀", out _), Does.Contain("1 to 32").And.Contain("it has 33"));
        Assert.That(_validator.ValidateRoom(new string('r', 64), out _), Is.Null);
        Assert.That(_validator.ValidateRoom(new string('r', 65), out _), Does.Contain("1 to 64"));
    }

    [TestCase("a\u0000b")]
    [TestCase("a\u001fb")]
    [TestCase("a\u007fb")]
    [TestCase("a\u0085b")]
    [TestCase("a\tb")]
    public void Names_with_control_characters_inside_are_refused(string name) =>
        Assert.That(_validator.ValidateRoom(name, out _), Does.Contain("control characters"));

    [Test]
    public void Missing_names_are_named() =>
        Assert.That(_validator.ValidateUser(null, out _), Is.EqualTo("Field 'user' is required and must be a string."));

    [TestCase("hello")]
    [TestCase("line one\r\nline two\ttabbed")]
    [TestCase("  leading and trailing  ")]
    [TestCase("<img src=x onerror=alert(1)>")]
    public void Text_is_accepted_as_sent(string text) => Assert.That(_validator.ValidateText(text), Is.Null);

    [TestCase("", "1 to 2000")]
    [TestCase("   \r\n\t ", "only white space")]
    [TestCase("bell\u0007", "control characters")]
    [TestCase("nul\u0000", "control characters")]
    public void Bad_text_is_named(string text, string error) => Assert.That(_validator.ValidateText(text), Does.Contain(error));

    [Test]
    public void Lone_surrogates_are_named()   // built at run time: attribute strings cannot hold a lone surrogate
    {
        Assert.That(_validator.ValidateText("x" + (char)0xD83D), Does.Contain("valid Unicode"));
        Assert.That(_validator.ValidateUser((char)0xDC00 + "x", out _), Does.Contain("valid Unicode"));
    }

    [Test]
    public void Text_limit_is_2000_code_points_and_configurable()
    {
        Assert.That(_validator.ValidateText(new string('x', 2000)), Is.Null);
        Assert.That(_validator.ValidateText(new string('x', 2001)), Does.Contain("it has 2001"));
        var strict = new FrameValidator(Options.Create(new ChatOptions { MaxTextLength = 5 }));
        Assert.That(strict.ValidateText("123456"), Does.Contain("1 to 5"));
    }
}
