#!/usr/bin/env bash
# What the test suite needs beyond the toolchains: Debian's Chromium and playwright-core
# (from npm, pinned by tests/ui/package-lock.json) for the dashboard's browser test.
# Idempotent: quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[install-test-deps] $*"; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  log "apt-get install chromium"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends chromium
fi
if [ ! -d tests/ui/node_modules/playwright-core ]; then
  log "npm ci (tests/ui: playwright-core)"
  (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
fi
log "ready: $(chromium --version 2>/dev/null | head -n1); playwright-core $(node -p 'require("./tests/ui/node_modules/playwright-core/package.json").version')"
