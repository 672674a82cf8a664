using Microsoft.AspNetCore.Http.Features;

namespace ChatServer.Connections;

internal static class ChatWebSockets
{
    /// <summary>
    /// <c>UseWebSockets()</c>, with every accepted socket writing through a <see cref="CloseLastStream"/> that the
    /// endpoint finds in the request's features. The WebSockets middleware takes the transport from the upgrade
    /// features when the request reaches it, so they are wrapped here, just before it.
    /// </summary>
    public static IApplicationBuilder UseChatWebSockets(this IApplicationBuilder app) => app
        .Use((context, next) =>
        {
            if (context.Features.Get<IHttpUpgradeFeature>() is { } upgrade)
            {
                context.Features.Set<IHttpUpgradeFeature>(new Upgrade(upgrade, context.Features));
            }

            if (context.Features.Get<IHttpExtendedConnectFeature>() is { } connect)   // WebSockets over HTTP/2
            {
                context.Features.Set<IHttpExtendedConnectFeature>(new ExtendedConnect(connect, context.Features));
            }

            return next(context);
        })
        .UseWebSockets();

    private static CloseLastStream Wrap(Stream transport, IFeatureCollection features)
    {
        var stream = new CloseLastStream(transport);
        features.Set(stream);
        return stream;
    }

    private sealed class Upgrade(IHttpUpgradeFeature inner, IFeatureCollection features) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync() => Wrap(await inner.UpgradeAsync(), features);
    }

    private sealed class ExtendedConnect(IHttpExtendedConnectFeature inner, IFeatureCollection features) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync() => Wrap(await inner.AcceptAsync(), features);
    }
}
