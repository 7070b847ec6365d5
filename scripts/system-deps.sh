#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real, when missing:
# Chromium for the browser tests (Playwright's own browser download needs
# network access) with fonts, and redis-server for the scale-out tests.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
((${#need[@]})) || exit 0

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
