#!/usr/bin/env bash
# Benchmark of issue 2: N simulated softphone tabs (WebSocket clients) on one
# server; status-change fan-out latency and server memory per tab.
# Usage: scripts/bench-tabs.sh [N ...]   (default: 1000 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin seatline --bin seatline-loadtest
for n in "${@:-1000 10000}"; do
  for tabs in $n; do
    echo "== $tabs tabs"
    target/release/seatline-loadtest --tabs "$tabs" --tabs-per-agent 2 --samples 2000 --concurrency 20 --deadline-secs 300
  done
done
