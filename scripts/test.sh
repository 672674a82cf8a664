#!/usr/bin/env bash
# The one command that runs the whole test suite: bash scripts/test.sh
# Installs what the tests need when it is missing and we are root (redis-server, postgresql, chromium, npm, clang and
# zlib1g-dev from Debian's packages; wscat from npm into tools/), builds,
# runs every test, and ends with one line: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: redis-server (unless CHAT_TEST_REDIS names a Redis), postgresql (unless CHAT_TEST_POSTGRES names
# one; the tests run its initdb and postgres from /usr/lib/postgresql/*/bin themselves, on a free loopback port, and
# never use the cluster the package may start on 5432), chromium for the browser tests, npm for wscat,
# and the native toolchain Native AOT links with (clang, zlib1g-dev), which the Dockerfile's -aot SDK image has: the
# published-output test runs the Dockerfile's publish command.
missing=()
if ! command -v clang >/dev/null 2>&1; then
  missing+=(clang)
fi
if ! dpkg -s zlib1g-dev >/dev/null 2>&1 && [ ! -e /usr/include/zlib.h ]; then
  missing+=(zlib1g-dev)
fi
if [ -z "${CHAT_TEST_REDIS:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi
if [ -z "${CHAT_TEST_POSTGRES:-}" ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
if [ -z "${CHAT_TEST_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${missing[*]} from Debian's packages..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Missing: ${missing[*]}. Install it (apt-get install ${missing[*]}); for Redis CHAT_TEST_REDIS=host:port also works, for PostgreSQL CHAT_TEST_POSTGRES=<Npgsql connection string>." >&2
  fi
fi

# wscat, from npm at the version tools/package-lock.json pins, into tools/node_modules (ignored by git).
if [ ! -x tools/node_modules/.bin/wscat ] && command -v npm >/dev/null 2>&1; then
  echo "Installing wscat from npm into tools/..."
  npm ci --prefix tools --no-audit --no-fund --loglevel=error >/dev/null
fi

# Playwright drives Debian's Chromium; it must never try to download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

status=0
dotnet build Chat.sln -c Release -nologo -clp:ErrorsOnly || status=$?
if [ "$status" -eq 0 ]; then
  dotnet test Chat.sln -c Release --no-build -nologo \
    --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" || status=$?
fi

# Sum the counters of every results file (one per test project).
passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)"
  attr() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  passed=$((passed + $(attr passed)))
  failed=$((failed + $(attr failed) + $(attr error) + $(attr timeout) + $(attr aborted)))
  skipped=$((skipped + $(attr notExecuted) + $(attr inconclusive)))
done

if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1   # the build or the test host failed before any test could report
fi
if [ "${CI:-}" = "true" ] && [ "$skipped" -gt 0 ]; then
  echo "CI: $skipped test(s) were skipped; in CI every dependency must be installed, so that is a failure." >&2
  status=1
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
