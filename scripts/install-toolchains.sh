#!/usr/bin/env bash
# Installs every toolchain minifaas drives at deploy time, on a Debian bookworm machine:
#   - C -> wasm32-wasi: clang-14, lld, wasi-libc and the wasm32 compiler-rt (Debian packages);
#   - Go -> wasip1: golang-1.23-go from bookworm-backports;
#   - Rust -> wasm32-wasip1: the rustup target;
#   - the interpreters of process functions: python3 (+ pip), node (+ npm), php-cli.
# Idempotent: a machine that already has everything only pays for the checks.
set -euo pipefail

log() { printf '[install-toolchains] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
command -v wasm-ld >/dev/null 2>&1 || need_apt+=(lld)
[ -f /usr/include/wasm32-wasi/stdio.h ] || need_apt+=(wasi-libc)
ls /usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need_apt+=(libclang-rt-14-dev-wasm32)
[ -x /usr/lib/go-1.23/bin/go ] || need_apt+=(golang-1.23-go)
command -v php >/dev/null 2>&1 || need_apt+=(php-cli)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [[ " ${need_apt[*]} " == *" golang-1.23-go "* ]] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "enabling bookworm-backports (for golang-1.23-go)"
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/minifaas-backports.list >/dev/null
  fi
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  apt_pkgs=()
  for p in "${need_apt[@]}"; do
    if [ "$p" = golang-1.23-go ]; then continue; fi
    apt_pkgs+=("$p")
  done
  if [ ${#apt_pkgs[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  fi
  if [[ " ${need_apt[*]} " == *" golang-1.23-go "* ]]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports golang-1.23-go >/dev/null
  fi
fi

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    log "rustup target add wasm32-wasip1"
    rustup target add wasm32-wasip1 >/dev/null
  fi
else
  log "warning: rustup not found; Rust functions need the wasm32-wasip1 target"
fi

log "toolchains ready: $(clang --version | head -n1); go $(/usr/lib/go-1.23/bin/go env GOVERSION 2>/dev/null || echo missing); $(python3 --version 2>&1); node $(node --version 2>&1); php $(php -r 'echo PHP_VERSION;' 2>&1)"
