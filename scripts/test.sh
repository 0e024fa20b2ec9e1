#!/usr/bin/env bash
# Runs Seatline's whole test suite on a fresh Debian 12 machine: installs
# what the tests need (Debian packages, npm packages; cargo fetches crates),
# then unit and integration tests (cargo), the web code's type check (tsc),
# and the end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# fonts-noto-cjk: Chinese glyphs for the zh-CN screenshot (else empty boxes).
# postgresql, haproxy, nats-server: the store tests run every query on a throw-away
# PostgreSQL too; the cluster tests put nodes behind HAProxy and on NATS.
packages=(chromium fonts-noto-cjk sip-tester baresip kamailio dnsmasq-base postgresql haproxy nats-server)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

echo "== npm packages for the browser tests"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "== format and lints (cargo fmt --check, clippy -D warnings)"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== build"
cargo build --locked --bin seatline

echo "== cargo tests"
cargo test --locked --workspace

echo "== type check of the web code (tsc --checkJs)"
tests/browser/node_modules/.bin/tsc -p web/tsconfig.json

echo "== browser tests (headless Chromium)"
(cd tests/browser && npm test)

echo "== all tests passed"
