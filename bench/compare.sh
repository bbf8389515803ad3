#!/usr/bin/env bash
# One run, one machine: a bare hyper "hello" server (the ceiling), minifaas serving the
# WASI hello (a fresh wasm instance per request), and minifaas serving a no-op Python
# handler (warm workers), each loaded by `minifaas bench`. Prints rps and p50/p99 for
# each and the ratio to the ceiling.
#
#   bench/compare.sh [-c CONCURRENCY] [-d DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=32
duration=10s
while getopts "c:d:" opt; do
  case $opt in
    c) concurrency=$OPTARG ;;
    d) duration=$OPTARG ;;
    *) echo "usage: $0 [-c CONCURRENCY] [-d DURATION]" >&2; exit 2 ;;
  esac
done

./scripts/install-toolchains.sh >/dev/null
cargo build --release --locked -p minifaas-cli --bin minifaas --example hyper_hello >&2
target="${CARGO_TARGET_DIR:-target}/release"
minifaas="$target/minifaas"

data=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$data"; }
trap cleanup EXIT

# Starts a server that prints "listening on http://ADDR"; echoes its URL.
start() {
  local log=$1; shift
  "$@" >"$log" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q "listening on" "$log" 2>/dev/null; then
      sed -n 's/^listening on //p' "$log" | head -n1
      return
    fi
    sleep 0.1
  done
  echo "server did not start: $*" >&2
  exit 1
}

ceiling=$(start "$data/hyper.log" "$target/examples/hyper_hello" 127.0.0.1:0)
server=$(start "$data/minifaas.log" env MINIFAAS_LOG=warn "$minifaas" serve --listen 127.0.0.1:0 --data "$data/data")
export MINIFAAS_KEY; MINIFAAS_KEY=$(cat "$data/data/admin.key")  # written on first start

"$minifaas" --url "$server" deploy examples/hello.c --name hello >/dev/null
printf 'def handle(request):\n    return "ok"\n' >"$data/noop.py"
"$minifaas" --url "$server" deploy "$data/noop.py" --name noop >/dev/null

run() {
  "$minifaas" --url "$server" bench "$1" -c "$concurrency" -d "$duration" --json
}
# Warm up, then measure.
for target_url in "$ceiling" hello noop; do
  "$minifaas" --url "$server" bench "$target_url" -c "$concurrency" -d 1s --json >/dev/null
done
ceiling_json=$(run "$ceiling")
wasi_json=$(run hello)
python_json=$(run noop)

python3 - "$ceiling_json" "$wasi_json" "$python_json" "$concurrency" "$duration" <<'PY'
import json, sys
ceiling, wasi, python = (json.loads(a) for a in sys.argv[1:4])
print(f"minifaas bench, closed loop, -c {sys.argv[4]} -d {sys.argv[5]}, one machine")
print(f"{'target':<28}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'of ceiling':>12}")
for name, r in [("hyper hello (ceiling)", ceiling), ("minifaas WASI hello", wasi), ("minifaas Python no-op", python)]:
    ratio = r["rps"] / ceiling["rps"] * 100
    print(f"{name:<28}{r['rps']:>10.0f}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}{r['errors']:>8}{ratio:>11.1f}%")
PY
