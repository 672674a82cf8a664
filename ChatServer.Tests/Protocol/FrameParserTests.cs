using System.Text;
using ChatServer.Protocol;

namespace ChatServer.Tests.Protocol;

public sealed class FrameParserTests
{
    private static ParsedFrame Parse(string json) => FrameParser.Parse(Encoding.UTF8.GetBytes(json));

    [Test]
    public void Signin_is_read_with_its_id()
    {
        var parsed = Parse("""{"type":"signin","id":7,"user":"alice","room":"general"}""");

        Assert.That(parsed.Error, Is.Null);
        Assert.That(parsed.Frame, Is.EqualTo(new SignInFrame("alice", "general")));
        Assert.That(parsed.Id?.GetRawText(), Is.EqualTo("7"));
    }

    [Test]
    public void UpdateSocketId_reads_since_and_epoch_and_treats_null_as_absent()
    {
        Assert.That(Parse("""{"type":"updateSocketId","user":"a","room":"r","since":17,"epoch":"k3x9"}""").Frame,
            Is.EqualTo(new UpdateSocketIdFrame("a", "r", 17, "k3x9")));
        Assert.That(Parse("""{"type":"updateSocketId","user":"a","room":"r","since":null}""").Frame,
            Is.EqualTo(new UpdateSocketIdFrame("a", "r", null, null)));
    }

    [TestCase("""{"type":"sendMessage","id":"abc","text":"x"}""", "\"abc\"")]
    [TestCase("""{"type":"sendMessage","id":1.50,"text":"x"}""", "1.50")]
    [TestCase("""{"type":"sendMessage","id":-3e2,"text":"x"}""", "-3e2")]
    [TestCase("""{"type":"sendMessage","id":null,"text":"x"}""", null)]
    [TestCase("""{"type":"sendMessage","text":"x"}""", null)]
    public void The_id_is_kept_as_the_same_json_value(string json, string? expectedRaw)
    {
        var parsed = Parse(json);
        Assert.That(parsed.Error, Is.Null);
        Assert.That(parsed.Id?.GetRawText(), Is.EqualTo(expectedRaw));
    }

    [Test]
    public void A_rejected_frame_still_carries_its_id()
    {
        var parsed = Parse("""{"type":"nope","id":"x-1"}""");
        Assert.That(parsed.Error, Does.Contain("Unknown frame type 'nope'"));
        Assert.That(parsed.Id?.GetRawText(), Is.EqualTo("\"x-1\""));
    }

    [TestCase("""{"type":"signin","id":{},"user":"a","room":"r"}""")]
    [TestCase("""{"type":"signin","id":"\ud800","user":"a","room":"r"}""")]
    [TestCase("""{"type":"signin","id":false,"user":"a","room":"r"}""")]
    public void An_id_of_another_type_is_rejected_and_answered_with_null(string json)
    {
        var parsed = Parse(json);
        Assert.That(parsed.Error, Does.StartWith("Field 'id' must be"));
        Assert.That(parsed.Id, Is.Null);
    }

    [TestCase("")]
    [TestCase("{")]
    [TestCase("{\"type\":\"signin\"}}")]
    [TestCase("nul")]
    public void Broken_json_is_named(string json) =>
        Assert.That(Parse(json).Error, Does.StartWith("The frame is not valid JSON"));

    [Test]
    public void Nesting_beyond_64_levels_is_rejected_not_thrown()
    {
        var deep = new string('[', 500) + new string(']', 500);
        Assert.That(Parse(deep).Error, Does.StartWith("The frame is not valid JSON"));
    }

    [Test]
    public void Field_names_are_case_sensitive()
    {
        var parsed = Parse("""{"type":"signin","User":"a","Room":"r"}""");
        Assert.That(parsed.Frame, Is.EqualTo(new SignInFrame(null, null)), "User/Room are not user/room; the validator will say so");
    }

    [TestCase("""{"type":"updateSocketId","user":"a","room":"r","since":9223372036854775808}""")]
    [TestCase("""{"type":"updateSocketId","user":"a","room":"r","since":true}""")]
    [TestCase("""{"type":"updateSocketId","user":"a","room":"r","since":2.0}""")]
    public void Since_must_be_a_non_negative_64_bit_integer(string json) =>
        Assert.That(Parse(json).Error, Does.Contain("'since'"));
}
