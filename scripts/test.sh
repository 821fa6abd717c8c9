#!/usr/bin/env bash
# `npm test`: everything, on a fresh machine too. Installs what is missing, then runs lints,
# native tests (core, shell, collector), the collector's tests again on a throwaway PostgreSQL
# (scripts/postgres.sh; stopped when that step ends, failures included), browser tests of the
# wasm boundary (wasm-bindgen-test in headless
# Chromium), the package build with its size ceiling, the TypeScript check, and the Playwright
# suites (the SDK in a page, the demo end to end over TLS, and `npm start` itself).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "tools"
bash scripts/ensure-tools.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p consentry-core -p consentry --target wasm32-unknown-unknown --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "the core depends on no browser crate"
if cargo tree -p consentry-core -e normal --prefix none | grep -E '^(wasm-bindgen|js-sys|web-sys)'; then
  echo "consentry-core must not depend on wasm or web crates" >&2
  exit 1
fi

step "native tests"
cargo test --workspace --locked

step "the collector's tests again, on PostgreSQL"
pg_script="$PWD/scripts/postgres.sh"
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/consentry-pg.XXXXXX")
# Stops the server on any exit, failures included; `|| true` keeps the script's own exit status.
trap 'bash "$pg_script" stop "$pg_dir" || true' EXIT
pg_url=$(bash "$pg_script" start "$pg_dir")
CONSENTRY_TEST_POSTGRES="$pg_url" cargo test -p consentry-collector --locked
# Stopped as soon as it is done: nothing later uses it, and the browser suites' timing should not
# share the two cores with it.
bash "$pg_script" stop "$pg_dir"
trap - EXIT

step "the JavaScript shell's pure parts (node:test)"
npm run test:js

step "the TCF and GPP decoders against the IAB reference libraries"
npm run test:iab

step "browser tests of the wasm boundary (headless Chromium)"
cargo test --target wasm32-unknown-unknown -p consentry --features std --locked

step "package build and size budget"
node scripts/build.mjs --check
git diff --exit-code --stat js/generated/consentry_wasm.d.ts \
  || { echo "the wasm API changed: commit js/generated/consentry_wasm.d.ts" >&2; exit 1; }

step "TypeScript declarations"
node_modules/.bin/tsc -p tests/types/tsconfig.json

step "Playwright: the SDK in the browser, and the demo end to end"
cargo build -p consentry-collector --locked
node_modules/.bin/playwright test
