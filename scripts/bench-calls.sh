#!/usr/bin/env bash
# Benchmark of issue 3: N agents, each with a real WebRTC leg (str0m client),
# call the sandbox echo number at once; set-up time, echo loss, server CPU
# and memory per call. Usage: scripts/bench-calls.sh [N ...] (default 50 100 150 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin seatline --bin seatline-callbench
for n in ${@:-50 100 150 200}; do
  echo "== $n calls"
  target/release/seatline-callbench --calls "$n" --seconds 10 --deadline-secs 240
done
