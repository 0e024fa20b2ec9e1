#!/usr/bin/env bash
# Benchmark of issue 8 (RTP relay): N concurrent forwarded calls through
# Seatline (a DID forwarded to a number: SIP-to-SIP, RTP relayed on both
# legs), G.711 both ways from seatline-relaybench, which plays both
# carriers; then the same load through rtpengine (Debian's rtpengine-daemon,
# userspace forwarding), and, when RUSTPBX_BIN is set (or `rustpbx` is on
# the PATH), through RustPBX forwarding every INVITE with its media proxy on
# (scripts/bench/rustpbx.toml), in the same run. Prints loss, the relay's
# CPU and memory per call, and the tool's own CPU.
# Usage: scripts/bench-relay.sh [N ...] (default 200 500 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v rtpengine >/dev/null; then
  apt-get install -y -q --no-install-recommends rtpengine-daemon
fi
cargo build --release --locked --bin seatline --bin seatline-relaybench
RUSTPBX_BIN=${RUSTPBX_BIN:-$(command -v rustpbx || true)}
for n in ${@:-200 500 1000}; do
  echo "== $n forwarded calls through Seatline"
  target/release/seatline-relaybench --calls "$n" --seconds 10 --deadline-secs 240
  echo "== $n calls through rtpengine"
  target/release/seatline-relaybench --calls "$n" --seconds 10 --deadline-secs 240 --rtpengine
  if [[ -n $RUSTPBX_BIN ]]; then
    echo "== $n calls through RustPBX"
    target/release/seatline-relaybench --calls "$n" --seconds 10 --deadline-secs 240 --rustpbx "$RUSTPBX_BIN"
  fi
done
