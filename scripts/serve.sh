#!/usr/bin/env bash
# Quick start, step 1: install the toolchains minifaas drives, build the release binary,
# and run `minifaas serve` on 127.0.0.1:8080 with its data in ./data.
# Extra arguments go to `minifaas serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-toolchains.sh
cargo build --release --locked -p minifaas-cli
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/minifaas" serve --listen "${MINIFAAS_LISTEN:-127.0.0.1:8080}" --data "${MINIFAAS_DATA:-./data}" "$@"
