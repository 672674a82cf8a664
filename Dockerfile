# syntax=docker/dockerfile:1
# Build: docker build -t chat .      Run: docker run -p 8080:8080 -e REDISHOST=10.0.0.3 chat
# Two stages: the SDK image compiles the server ahead of time to one native executable (Native AOT); the small
# runtime-deps image (no .NET runtime: the executable carries its own) runs only that output.

# The -aot variant of the SDK image adds the native toolchain Native AOT links with (clang, llvm, zlib1g-dev).
FROM mcr.microsoft.com/dotnet/sdk:10.0-noble-aot AS build
WORKDIR /src
# Restore first, from the files that name packages only, so the layer is cached until a version changes.
# (global.json is left out on purpose: the SDK image's own SDK builds; the pin is for developer machines.)
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY ChatServer/ChatServer.csproj ChatServer/
# Restored for linux-x64: with PublishAot (set in ChatServer.csproj) that also fetches the ILCompiler packages and the
# runtime packs the publish below needs (a builder with an empty package cache has none of them).
RUN dotnet restore ChatServer/ChatServer.csproj -r linux-x64
COPY ChatServer/ ChatServer/
COPY wwwroot/ wwwroot/
# Native AOT: no JIT at start, so a Cloud Run cold start waits far less (docs/benchmarks.md, "Cold start").
RUN dotnet publish ChatServer/ChatServer.csproj -c Release -r linux-x64 -o /app --no-restore

# Same Ubuntu release (noble) as the build image, so the executable finds the C library it was linked against.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0-noble AS final
WORKDIR /app
COPY --from=build /app ./
# Cloud Run sets PORT; the server listens on 0.0.0.0:$PORT (8080 when unset).
ENV PORT=8080
EXPOSE 8080
# The image's built-in non-root user.
USER $APP_UID
ENTRYPOINT ["/app/ChatServer"]
