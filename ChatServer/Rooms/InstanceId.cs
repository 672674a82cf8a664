namespace ChatServer.Rooms;

/// <summary>This process's name among the instances: in connection ids and presence entries. No spaces.</summary>
internal sealed class InstanceId
{
    public string Value { get; } = Epochs.New();

    public override string ToString() => Value;
}
