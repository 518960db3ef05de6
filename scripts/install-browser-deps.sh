#!/usr/bin/env bash
# Install the system Chromium that the Neo4j Browser test drives through Playwright.
# Playwright never downloads its own browser here: the tests pass executable_path=/usr/bin/chromium.
# Idempotent: does nothing when /usr/bin/chromium already exists. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "error: installing chromium needs root; run this script as root or install sudo" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-liberation
/usr/bin/chromium --version
