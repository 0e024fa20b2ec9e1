#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS_PER_TARGET seconds, one
# after the other, and prints per target the executions and any crash files.
# A benchmark, not a test: it exits 0 whatever the fuzzers find (non-zero
# only when it cannot build). Corpora grow in fuzz/corpus/<target>.
#
#   scripts/fuzz.sh 3600            # an hour per target
#   FUZZ_SANITIZER=address scripts/fuzz.sh 600
#
# The code is safe Rust, so no sanitizer by default (several times faster);
# debug assertions (overflow checks) are on either way.
set -euo pipefail

secs="${1:?usage: scripts/fuzz.sh SECONDS_PER_TARGET}"
sanitizer="${FUZZ_SANITIZER:-none}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -s "$sanitizer" >/dev/null

logs="$root/fuzz/artifacts/logs"
mkdir -p "$logs"
summary=()
for t in $targets; do
    mkdir -p "artifacts/$t" "corpus/$t"
    stamp="$(mktemp)"
    log="$logs/$t.log"
    echo "== $t: ${secs}s" >&2
    set +e
    cargo +nightly fuzz run -s "$sanitizer" "$t" -- -max_total_time="$secs" -timeout=30 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1 || true)
    if [ -z "$runs" ]; then
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    fi
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
    crashes=$(find "artifacts/$t" -maxdepth 1 -type f -newer "$stamp" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)
    rm -f "$stamp"
    line="$t: ${runs:-?} executions in ${secs}s, ${cov:-cov: ?}, exit $rc"
    if [ -n "$crashes" ]; then
        line="$line, findings:"
        for c in $crashes; do line="$line fuzz/$c"; done
    else
        line="$line, no findings"
    fi
    echo "$line"
    summary+=("$line")
done
echo "--- summary (logs in fuzz/artifacts/logs)"
printf '%s\n' "${summary[@]}"
