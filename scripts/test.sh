#!/usr/bin/env bash
# Quick start, step 2: the whole test suite (unit tests and integration tests that start
# the real server on an ephemeral port with a temp data dir).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-toolchains.sh
./scripts/install-test-deps.sh
cargo test --workspace --locked "$@"
