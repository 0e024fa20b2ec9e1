#!/usr/bin/env bash
# Benchmark of issue 8 (RTP relay): N concurrent forwarded calls through
# Seatline (a DID forwarded to a number: SIP-to-SIP, RTP relayed both legs),
# G.711 both ways from seatline-relaybench, which is both carriers. Prints
# loss, server CPU and memory per call, and the tool's own CPU.
# Usage: scripts/bench-relay.sh [N ...] (default 200 500 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin seatline --bin seatline-relaybench
for n in ${@:-200 500 1000}; do
  echo "== $n forwarded calls"
  target/release/seatline-relaybench --calls "$n" --seconds 10 --deadline-secs 240
done
