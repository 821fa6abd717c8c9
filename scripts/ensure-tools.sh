#!/usr/bin/env bash
# Installs what a fresh machine lacks for building and testing Consentry, and nothing it has:
# the wasm32 Rust target, wasm-bindgen-cli at exactly the version Cargo.lock pins, Debian's
# Chromium and ChromeDriver, and the npm dev dependencies. Never downloads a browser elsewhere.
# `--no-browser` (what `npm start` passes) skips Chromium: building and serving need none.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[ensure-tools]\033[0m %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

wanted=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$wanted" ]; then
  say "installing wasm-bindgen-cli $wanted (have: ${have:-none})"
  # --locked fails on this registry (one pinned transitive crate is missing); plain works.
  cargo install wasm-bindgen-cli --version "$wanted" --locked 2>/dev/null \
    || cargo install wasm-bindgen-cli --version "$wanted"
fi

if [ "${1:-}" != "--no-browser" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
  say "installing Debian's chromium and chromium-driver"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dev dependencies"
  npm ci --no-audit --no-fund
fi
