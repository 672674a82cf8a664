# syntax=docker/dockerfile:1
# Build: docker build -t chat .      Run: docker run -p 8080:8080 -e REDISHOST=10.0.0.3 chat
# Two stages: the SDK image restores and publishes; the small ASP.NET runtime image runs only the published output.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore first, from the files that name packages only, so the layer is cached until a version changes.
# (global.json is left out on purpose: the SDK image's own SDK builds; the pin is for developer machines.)
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY ChatServer/ChatServer.csproj ChatServer/
# Restored for linux-x64 with PublishReadyToRun set, so the restore also fetches the ReadyToRun compiler package the
# publish below needs (without the property it is never restored, and a builder with an empty package cache fails
# with NETSDK1094). Ahead-of-time code starts the process sooner (docs/benchmarks.md): a Cloud Run cold start waits on it.
RUN dotnet restore ChatServer/ChatServer.csproj -r linux-x64 -p:PublishReadyToRun=true
COPY ChatServer/ ChatServer/
COPY wwwroot/ wwwroot/
RUN dotnet publish ChatServer/ChatServer.csproj -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS final
WORKDIR /app
COPY --from=build /app ./
# Cloud Run sets PORT; the server listens on 0.0.0.0:$PORT (8080 when unset).
ENV PORT=8080
EXPOSE 8080
# The image's built-in non-root user.
USER $APP_UID
ENTRYPOINT ["dotnet", "ChatServer.dll"]
