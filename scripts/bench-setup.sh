#!/usr/bin/env bash
# Benchmark of issue 8: call set-up rate through a forwarded DID.
#
# SIPp (tests/sipp/bench_uac.xml: INVITE with SDP, 200, ACK, a pause, BYE)
# calls the DID 12025550171, which Seatline (`seatline demo`, the release
# binary) forwards over its trunk to a SIPp answering peer
# (tests/sipp/bench_uas.xml: 200 with SDP, waits for ACK and BYE). The same
# load also goes through Kamailio (Debian's package) as a stateful
# record-routing proxy to a peer of its own, rate by rate, in the same run,
# and through RustPBX (a Rust B2BUA, `cargo install rustpbx`; with PEERS
# naming it and RUSTPBX_BIN or `rustpbx` on the PATH) forwarding every INVITE
# to a peer of its own with its media proxy on (scripts/bench/rustpbx.toml).
# No RTP is sent.
#
# Per rate and server: calls attempted, successful and failed (SIPp's own
# counts, from its -trace_stat file), the server's CPU (utime+stime from
# /proc, all its threads or processes) from before the first call to
# SETTLE_S after the last, per successful call, and the two SIPp processes'
# CPU apart.
#
# Usage: scripts/bench-setup.sh [RATE ...]     (calls/s; default 100 200 400 600 800 1000)
# Environment: CALL_SECS (s of calls per rate, 10), HOLD_MS (pause between ACK
# and BYE, 1000), SETTLE_S (5), GAP_S (33), SKIP_BUILD=1, SEATLINE_BIN, PEERS
# ("seatline kamailio", or any of "seatline kamailio rustpbx"), RUSTPBX_BIN,
# RUST_LOG (warn), BASE_PORT (loopback ports BASE_PORT..+20, 25060).
#
# Rates run in turn on each server (seatline 100, kamailio 100, seatline
# 200, ...). A server's next rate starts at least GAP_S after its previous
# one's last call, so that every rate starts with the previous one's SIP
# transactions expired (64*T1 = 32 s for a UDP server transaction that only
# absorbs retransmissions). A server failing more than 20 % of its calls at a
# rate is not run at higher rates.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=(${@:-100 200 400 600 800 1000})
CALL_SECS=${CALL_SECS:-10}
HOLD_MS=${HOLD_MS:-1000}
SETTLE_S=${SETTLE_S:-5}
GAP_S=${GAP_S:-33}
PEERS=(${PEERS:-seatline kamailio})
BASE_PORT=${BASE_PORT:-25060}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${SEATLINE_BIN:-$TARGET_DIR/release/seatline}
DID=12025550171
# Loopback ports: Seatline SIP, Kamailio, callee SIP behind Seatline, caller
# SIP, HTTP, callee SIP behind Kamailio (its own, so that late requests from
# one server's calls never reach the other's callee), then each SIPp's 4 media
# ports (audio and video RTP+RTCP, bound even if unused).
SL_PORT=$BASE_PORT KAM_PORT=$((BASE_PORT + 1)) UAS_PORT=$((BASE_PORT + 2)) UAS2_PORT=$((BASE_PORT + 9))
UAS_MP=$((BASE_PORT + 10)) UAC_PORT=$((BASE_PORT + 3)) UAC_MP=$((BASE_PORT + 14))
HTTP_PORT=$((BASE_PORT + 8))
# RustPBX's SIP port, its callee's, and its HTTP (AMI) port.
RPBX_PORT=$((BASE_PORT + 18)) UAS3_PORT=$((BASE_PORT + 19)) RPBX_HTTP=$((BASE_PORT + 20))

command -v sipp >/dev/null || { echo "needs sipp (apt-get install -y sip-tester)" >&2; exit 2; }
if [[ " ${PEERS[*]} " == *" kamailio "* ]]; then
  command -v kamailio >/dev/null || { echo "needs kamailio (apt-get install -y kamailio)" >&2; exit 2; }
fi
if [[ " ${PEERS[*]} " == *" rustpbx "* ]]; then
  RUSTPBX_BIN=${RUSTPBX_BIN:-$(command -v rustpbx || true)}
  [[ -x ${RUSTPBX_BIN:-} ]] || { echo "needs rustpbx (cargo install rustpbx; or set RUSTPBX_BIN)" >&2; exit 2; }
fi
if [[ -z ${SKIP_BUILD:-} && -z ${SEATLINE_BIN:-} ]]; then
  cargo build --release --locked --bin seatline
fi
for p in $SL_PORT $KAM_PORT $UAS_PORT $UAS2_PORT $UAC_PORT $RPBX_PORT $UAS3_PORT $(seq $UAS_MP $((UAS_MP + 3))) $(seq $UAC_MP $((UAC_MP + 3))); do
  if [[ -n $(ss -Hlun "sport = :$p") ]]; then echo "UDP port $p is taken (set BASE_PORT)" >&2; exit 2; fi
done
if [[ -n $(ss -Hltn "sport = :$HTTP_PORT") ]]; then echo "TCP port $HTTP_PORT is taken (set BASE_PORT)" >&2; exit 2; fi

# Every call of a rate holds 4 RTP sockets in Seatline; SIPp wants 1 fd per call.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d /tmp/bench-setup.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)

. "$ROOT/scripts/bench/lib.sh"

wait_http() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "seatline did not start; see $WORK/seatline.log" >&2
  return 1
}

start_seatline() {
  cat >"$WORK/seatline.toml" <<EOF
[sip]
listen = "127.0.0.1:$SL_PORT"

[[trunk]]
name = "carrier"
uri = "sip:127.0.0.1:$UAS_PORT"
inbound_from = ["127.0.0.1"]
EOF
  RUST_LOG=${RUST_LOG:-warn} "$BIN" demo --listen "127.0.0.1:$HTTP_PORT" \
    --data-dir "$WORK/seatline-data" --config "$WORK/seatline.toml" \
    >"$WORK/seatline.log" 2>&1 &
  SL_PID=$!
  PIDS+=("$SL_PID")
  wait_http
  local token
  token=$(curl -fsS -H 'content-type: application/json' \
    -d '{"email":"admin@demo.local","password":"demo1234"}' \
    "http://127.0.0.1:$HTTP_PORT/api/v1/sessions" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  curl -fsS -X PUT -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"forwardTo":"14155550123"}' \
    "http://127.0.0.1:$HTTP_PORT/api/v1/admin/dids/$DID/route"
}

start_kamailio() {
  local mods
  mods=$(dirname "$(find /usr/lib -path '*kamailio/modules/tm.so' | head -1)")
  mkdir -p "$WORK/kam"
  # A stateful proxy: max-forwards check, record-route on INVITE, in-dialog
  # requests by their route set, everything else relayed by tm to the callee.
  cat >"$WORK/kam/kamailio.cfg" <<EOF
#!KAMAILIO
debug=1
log_stderror=yes
memdbg=5
memlog=5
children=2
auto_aliases=no
listen=udp:127.0.0.1:$KAM_PORT
alias="127.0.0.1:$KAM_PORT"
mpath="$mods/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
loadmodule "siputils.so"
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (method == "ACK" && t_check_trans()) { t_relay(); }
    exit;
  }
  if (method == "INVITE") { record_route(); }
  if (!t_relay_to_udp("127.0.0.1", "$UAS2_PORT")) { sl_reply_error(); }
}
EOF
  kamailio -DD -E -f "$WORK/kam/kamailio.cfg" -Y "$WORK/kam" -P "$WORK/kam/kamailio.pid" \
    -w "$WORK/kam" -m 256 -M 16 >"$WORK/kamailio.log" 2>&1 &
  KAM_PID=$!
  PIDS+=("$KAM_PID")
  for _ in $(seq 1 50); do
    [[ -n $(ss -Hlun "sport = :$KAM_PORT") ]] && return 0
    kill -0 "$KAM_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "kamailio did not start; see $WORK/kamailio.log" >&2
  return 1
}

start_rustpbx() {
  local dir=$WORK/rustpbx
  mkdir -p "$dir"
  sed -e "s#@SIP_PORT@#$RPBX_PORT#g; s#@CALLEE_PORT@#$UAS3_PORT#g; s#@HTTP_PORT@#$RPBX_HTTP#g; s#@DATA_DIR@#$dir#g" \
    "$ROOT/scripts/bench/rustpbx.toml" >"$dir/rustpbx.toml"
  # It reads .env from, and writes files to, its working directory.
  (cd "$dir" && exec env RUST_LOG=warn "$RUSTPBX_BIN" --conf "$dir/rustpbx.toml") >"$WORK/rustpbx.log" 2>&1 &
  RPBX_PID=$!
  PIDS+=("$RPBX_PID")
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$RPBX_HTTP/ami/v1/health" 2>/dev/null && return 0
    kill -0 "$RPBX_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "rustpbx did not start; see $WORK/rustpbx.log" >&2
  return 1
}

# One rate through one server; prints a table row and stores the figures.
declare -A CLEAN
step() {
  local peer=$1 rate=$2 addr pid count dir limit callee
  case $peer in
    seatline) addr=127.0.0.1:$SL_PORT pid=$SL_PID callee=$UAS_PORT ;;
    kamailio) addr=127.0.0.1:$KAM_PORT pid=$KAM_PID callee=$UAS2_PORT ;;
    rustpbx) addr=127.0.0.1:$RPBX_PORT pid=$RPBX_PID callee=$UAS3_PORT ;;
  esac
  count=$((rate * CALL_SECS))
  dir=$WORK/$peer-$rate
  local wait_s
  wait_s=$(awk -v e="${LAST_END[$peer]:-0}" -v g="$GAP_S" -v n="$(date +%s.%N)" 'BEGIN { w = e + g - n; printf "%.1f", (w > 0 ? w : 0) }')
  sleep "$wait_s"
  mkdir -p "$dir"
  limit=$((CALL_SECS + HOLD_MS / 1000 + 40))
  local cpu0 drops0 drops1 cpu1 t0 t1
  cpu0=$(cpu_ticks "$pid")
  drops0=$(udp_drops "${addr##*:}")
  t0=$(date +%s.%N)
  # The callee: answers COUNT calls, or gives up at the time limit.
  (
    cd "$dir"
    TIMEFORMAT='%U %S'
    { time timeout -k 5 "$limit" sipp -sf "$ROOT/tests/sipp/bench_uas.xml" -i 127.0.0.1 \
        -p "$callee" -mp "$UAS_MP" -m "$count" -nostdin -buff_size 4194304 \
        -trace_stat -stf uas.csv -fd 1 -trace_err -error_file uas_errors.log \
        >uas.out 2>&1; } 2>uas.time
  ) &
  local uas=$!
  PIDS+=("$uas")
  sleep 0.3
  (
    cd "$dir"
    TIMEFORMAT='%U %S'
    { time timeout -k 5 "$limit" sipp "$addr" -sf "$ROOT/tests/sipp/bench_uac.xml" -s "$DID" \
        -i 127.0.0.1 -p "$UAC_PORT" -mp "$UAC_MP" -r "$rate" -rp 1000 -m "$count" \
        -d "$HOLD_MS" -nostdin -buff_size 4194304 -timeout "$((limit - 5))s" -timeout_error \
        -trace_stat -stf uac.csv -fd 1 -trace_err -error_file uac_errors.log \
        >uac.out 2>&1; } 2>uac.time
  ) || true
  # Calls the callee never saw end (refused by the server, say): it waits
  # 5 s more, then is stopped (its timeout process, which stops SIPp).
  for _ in $(seq 1 50); do kill -0 "$uas" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$uas" 2>/dev/null; then
    for k in $(ps -o pid= --ppid "$uas"); do kill -TERM "$k" 2>/dev/null || true; done
  fi
  wait "$uas" 2>/dev/null || true
  t1=$(date +%s.%N)
  LAST_END[$peer]=$t1
  sleep "$SETTLE_S"
  cpu1=$(cpu_ticks "$pid")
  drops1=$(udp_drops "${addr##*:}")

  local out ok failed uac_cpu uas_cpu rtt wall retrans placed
  out=$(stat_col "$dir/uac.csv" 'OutgoingCall(C)')
  ok=$(stat_col "$dir/uac.csv" 'SuccessfulCall(C)')
  failed=$(stat_col "$dir/uac.csv" 'FailedCall(C)')
  # Calls never placed or never finished (SIPp stopped at its time limit) are failures too.
  failed=$((count - ok > failed ? count - ok : failed))
  # SIPp keeps response times in whole milliseconds.
  rtt=$(to_ms "$(stat_col "$dir/uac.csv" 'ResponseTime1(C)')")
  if [[ $rtt == 0.0 ]]; then rtt="< 1"; fi
  retrans=$(stat_col "$dir/uac.csv" 'Retransmissions(C)')
  # Seconds SIPp took to place its calls (to its 1 s statistics period).
  placed=$(awk -F';' -v n="$out" 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "OutgoingCall(C)") c = i; if ($i == "ElapsedTime(C)") e = i }; next }
    $c == n && n > 0 { split($e, t, ":"); print t[1] * 3600 + t[2] * 60 + t[3]; exit }' "$dir/uac.csv")
  uac_cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { c = $1 + $2 } END { if (c != "") printf "%.2f", c; else print "-" }' "$dir/uac.time" 2>/dev/null || echo -)
  uas_cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { c = $1 + $2 } END { if (c != "") printf "%.2f", c; else print "-" }' "$dir/uas.time" 2>/dev/null || echo -)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  # Why calls failed: final responses SIPp did not expect, by code, and timeouts.
  local why
  why=$({ grep -o "received 'SIP/2.0 [0-9]*" "$dir/uac_errors.log" 2>/dev/null || true; } | awk '{ n[$3]++ } END { for (c in n) printf "%s%s x%d", (k++ ? ", " : ""), c, n[c] }')
  local timeouts
  timeouts=$(( $(stat_col "$dir/uac.csv" 'FailedMaxUDPRetrans(C)') + $(stat_col "$dir/uac.csv" 'FailedTimeoutOnRecv(C)') ))
  if ((timeouts > 0)); then why="${why:+$why, }timeouts x$timeouts"; fi
  local server_s per_call fail_pct
  server_s=$(awk -v t="$((cpu1 - cpu0))" -v k="$TICK" 'BEGIN { printf "%.2f", t / k }')
  per_call=$(awk -v s="$server_s" -v n="$ok" 'BEGIN { if (n > 0) printf "%.3f", s * 1000 / n; else print "-" }')
  fail_pct=$(awk -v f="$failed" -v n="$count" 'BEGIN { printf "%.2f", 100 * f / n }')
  printf '| %s | %d | %d | %d in %s s | %d | %d | %s %% | %s | %d | %s ms | %s s | %s ms | %s s | %s s | %s s | %d |\n' \
    "$peer" "$rate" "$count" "$out" "${placed:-?}" "$ok" "$failed" "$fail_pct" "${why:--}" "$retrans" "$rtt" \
    "$server_s" "$per_call" "$uac_cpu" "$uas_cpu" "$wall" "$((drops1 - drops0))"
  echo "$peer $rate $count $out $ok $failed $server_s $per_call $uac_cpu $uas_cpu" >>"$WORK/results"
  if awk -v f="$failed" -v n="$count" 'BEGIN { exit !(f * 1000 < n) }'; then
    CLEAN[$peer]=$rate
    CLEAN_CPU[$peer]=$per_call
  fi
}
declare -A CLEAN_CPU LAST_END

echo "# bench-setup: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg), $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ]*' | head -1), $(kamailio -v 2>/dev/null | head -1 || true)${RUSTPBX_BIN:+, rustpbx $("$RUSTPBX_BIN" --version 2>/dev/null | head -1)}"
echo "# ${CALL_SECS} s of calls per rate, ${HOLD_MS} ms between ACK and BYE, server CPU read ${SETTLE_S} s after the last call; work dir $WORK"
for peer in "${PEERS[@]}"; do "start_$peer"; done
sleep 1
idle=()
for peer in "${PEERS[@]}"; do
  case $peer in seatline) pid=$SL_PID ;; kamailio) pid=$KAM_PID ;; rustpbx) pid=$RPBX_PID ;; esac
  idle+=("$peer $pid $(cpu_ticks "$pid")")
done
sleep 5
for i in "${idle[@]}"; do
  set -- $i
  echo "# idle CPU of $1 (over 5 s): $(awk -v t="$(($(cpu_ticks "$2") - $3))" -v k="$TICK" 'BEGIN { printf "%.1f", t * 1000 / k / 5 }') ms/s"
done
echo
echo "| server | calls/s | calls | attempted | successful | failed | failed % | failures seen by the caller | caller retransmissions | INVITE→200 mean | server CPU | per successful call | caller SIPp CPU | callee SIPp CPU | wall | server socket drops |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
declare -A DEAD
for rate in "${RATES[@]}"; do
  for peer in "${PEERS[@]}"; do
    if [[ -n ${DEAD[$peer]:-} ]]; then continue; fi
    step "$peer" "$rate"
    # A server failing more than 20 % of calls is not run at higher rates.
    if awk -v p="$peer" -v r="$rate" '$1 == p && $2 == r { exit !($6 * 5 > $3) }' "$WORK/results"; then
      DEAD[$peer]=1
    fi
  done
done
echo
for peer in "${PEERS[@]}"; do
  echo "$peer: highest rate with < 0.1 % failed: ${CLEAN[$peer]:-none} calls/s (server CPU per call there: ${CLEAN_CPU[$peer]:--} ms)"
done
for other in kamailio rustpbx; do
  if [[ -n ${CLEAN[seatline]:-} && -n ${CLEAN[$other]:-} ]]; then
    awk -v a="${CLEAN[seatline]}" -v b="${CLEAN[$other]}" -v o="$other" 'BEGIN { printf "clean-rate ratio seatline/%s: %.2f\n", o, a / b }'
    # CPU per call at each rate both ran cleanly.
    awk -v o="$other" '{ pc[$1, $2] = $8; f[$1, $2] = $6; n[$1, $2] = $3; r[$2] = 1 }
      END { for (x in r) if (("seatline", x) in pc && (o, x) in pc && f["seatline", x] * 1000 < n["seatline", x] && f[o, x] * 1000 < n[o, x] && pc[o, x] > 0)
        printf "CPU per call ratio seatline/%s at %d calls/s: %.2f\n", o, x, pc["seatline", x] / pc[o, x] }' "$WORK/results" | sort -t' ' -k7 -n
  fi
done
echo "logs: $WORK"
