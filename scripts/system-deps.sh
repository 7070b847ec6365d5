#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real, when missing:
# Chromium for the browser tests (Playwright's own browser download needs
# network access) with fonts, redis-server for the scale-out tests, and
# Node.js with npm for the demo OpenID Connect provider (team-mode tests).
# Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
# PostgreSQL's initdb/pg_ctl: tests/postgres_server.py starts a throwaway
# cluster for the database tests (the service Debian starts is not used).
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# Node.js 20+ and npm run the demo OpenID Connect provider (oidc/).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ((${#need[@]} == 0)); then
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || {
        echo "Node.js $(node --version) is too old for oidc/: install Node.js 20 or later" >&2
        exit 1
    }
    exit 0
fi

echo "Installing missing system packages: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "Run as root: apt-get install -y ${need[*]}" >&2
    exit 1
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}"
# Debian starts redis-server as a service on port 6379; the tests start their
# own on free ports and do not need it.
