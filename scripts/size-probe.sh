#!/usr/bin/env bash
# Quick size probe for development: release build, wasm-bindgen, wasm-opt -Oz, gzip sizes.
# (The package build, `npm run build`, reports the real figures; this is for fast iteration.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --target wasm32-unknown-unknown --release -p consentry --locked 2>&1 | grep -E "^error" -A5 || true
out=$(mktemp -d)
wasm-bindgen target/wasm32-unknown-unknown/release/consentry.wasm --out-dir "$out" --target web \
  --remove-name-section --remove-producers-section --out-name consentry_wasm
node_modules/.bin/wasm-opt -Oz "$out/consentry_wasm_bg.wasm" -o "$out/opt.wasm"
echo "wasm raw=$(stat -c %s "$out/consentry_wasm_bg.wasm") opt=$(stat -c %s "$out/opt.wasm") opt.gz=$(gzip -9c "$out/opt.wasm" | wc -c)"
if [ "${1:-}" = "--names" ]; then
  wasm-bindgen target/wasm32-unknown-unknown/release/consentry.wasm --out-dir "$out/named" --target web --out-name consentry_wasm
  node_modules/.bin/wasm-opt -Oz -g "$out/named/consentry_wasm_bg.wasm" -o "$out/named.wasm"
  twiggy top -n "${2:-40}" "$out/named.wasm"
fi
rm -rf "$out"
