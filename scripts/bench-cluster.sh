#!/usr/bin/env bash
# Benchmark of issue 12: what several nodes cost per inbound call.
#
# The load of bench-setup.sh (SIPp tests/sipp/bench_uac.xml calls the DID
# 12025550171, which Seatline forwards to a SIPp answering peer; no RTP) is
# run, rate by rate, against three set-ups in turn, in the same run:
#
#   single    one node on SQLite, SIPp straight to it (the default set-up);
#   cluster1  one node on PostgreSQL behind Kamailio's dispatcher
#             (deploy/kamailio/kamailio.cfg as shipped): caller -> Kamailio
#             -> node -> Kamailio -> callee;
#   cluster3  three nodes on one PostgreSQL behind the same Kamailio.
#
# PostgreSQL is a throw-away cluster (Debian's postgresql, run as the
# postgres user when we are root) with its default durability: fsync and
# synchronous_commit on. Per rate and set-up: calls attempted, successful
# and failed (SIPp's counts), the caller's mean INVITE->200 time, and the
# CPU (utime+stime from /proc, whole process trees, from before the first
# call to SETTLE_S after the last) of the Seatline nodes, Kamailio and
# PostgreSQL apart, each per successful call, and the two SIPp processes'.
#
# Usage: scripts/bench-cluster.sh [RATE ...]     (calls/s; default 100 400)
# Environment: CALL_SECS (10), HOLD_MS (1000), SETTLE_S (5), GAP_S (33),
# SETUPS ("single cluster1 cluster3"), SEATLINE_BIN, SKIP_BUILD=1,
# RUST_LOG (warn), BASE_PORT (loopback ports BASE_PORT..+30, 26060).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=(${@:-100 400})
CALL_SECS=${CALL_SECS:-10}
HOLD_MS=${HOLD_MS:-1000}
SETTLE_S=${SETTLE_S:-5}
GAP_S=${GAP_S:-33}
SETUPS=(${SETUPS:-single cluster1 cluster3})
BASE_PORT=${BASE_PORT:-26060}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${SEATLINE_BIN:-$TARGET_DIR/release/seatline}
DID=12025550171
KAM_PORT=$BASE_PORT UAS_PORT=$((BASE_PORT + 1)) UAC_PORT=$((BASE_PORT + 2))
PG_PORT=$((BASE_PORT + 3)) UAS_MP=$((BASE_PORT + 4)) UAC_MP=$((BASE_PORT + 8))
# Node i (1..3): SIP on BASE_PORT+20+i, HTTP on BASE_PORT+24+i.
sip_port() { echo $((BASE_PORT + 20 + $1)); }
http_port() { echo $((BASE_PORT + 24 + $1)); }

for tool in sipp kamailio; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y sip-tester kamailio)" >&2; exit 2; }
done
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PG_BIN/initdb ]] || { echo "needs postgresql (apt-get install -y postgresql)" >&2; exit 2; }
if [[ -z ${SKIP_BUILD:-} && -z ${SEATLINE_BIN:-} ]]; then
  cargo build --release --locked --bin seatline
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d /tmp/bench-cluster.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local p
  # PostgreSQL's fast shutdown (SIGTERM is its "smart" one, which may wait).
  [[ -n ${PG_PID:-} ]] && kill -INT "$PG_PID" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)
. "$ROOT/scripts/bench/lib.sh"

# PostgreSQL refuses to run as root: as the postgres user, then.
as_pg() {
  if [[ $(id -u) == 0 ]]; then
    setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  mkdir -p "$WORK/pg"
  [[ $(id -u) == 0 ]] && chown postgres "$WORK/pg"
  as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1
  as_pg "$PG_BIN/postgres" -D "$WORK/pg/data" -p "$PG_PORT" -k "$WORK/pg" \
    -c listen_addresses=127.0.0.1 -c max_connections=200 >"$WORK/postgres.log" 2>&1 &
  PG_PID=$!
  PIDS+=("$PG_PID")
  for _ in $(seq 1 100); do
    [[ -n $(ss -Hltn "sport = :$PG_PORT") ]] && return 0
    sleep 0.1
  done
  echo "postgres did not start; see $WORK/postgres.log" >&2
  return 1
}

# Node i of the set-up: on PostgreSQL behind Kamailio, or (db=sqlite) alone
# with the callee as its trunk and the caller let in.
start_node() {
  local i=$1 db=$2 dir=$WORK/$SETUP/node$1
  mkdir -p "$dir"
  {
    echo "listen = \"127.0.0.1:$(http_port "$i")\""
    echo "data_dir = \"$dir/data\""
    echo
    echo "[demo]"
    echo "seed = true"
    echo
    echo "[sip]"
    echo "listen = \"127.0.0.1:$(sip_port "$i")\""
    echo
    if [[ $db == postgres ]]; then
      echo "[store]"
      echo "url = \"postgres://postgres@127.0.0.1:$PG_PORT/$SETUP\""
      echo
      echo "[cluster]"
      echo "node = \"node$i\""
      echo
      echo "[[trunk]]"
      echo "name = \"kamailio\""
      echo "uri = \"sip:127.0.0.1:$KAM_PORT\""
    else
      echo "[[trunk]]"
      echo "name = \"carrier\""
      echo "uri = \"sip:127.0.0.1:$UAS_PORT\""
      echo "inbound_from = [\"127.0.0.1\"]"
    fi
  } >"$dir/seatline.toml"
  RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --config "$dir/seatline.toml" >"$dir/seatline.log" 2>&1 &
  NODE_PIDS+=($!)
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$(http_port "$i")/healthz" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "node $i did not start; see $dir/seatline.log" >&2
  return 1
}

forward_did() {
  local token
  token=$(curl -fsS -H 'content-type: application/json' \
    -d '{"email":"admin@demo.local","password":"demo1234"}' \
    "http://127.0.0.1:$(http_port 1)/api/v1/sessions" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  curl -fsS -X PUT -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"forwardTo":"14155550123"}' \
    "http://127.0.0.1:$(http_port 1)/api/v1/admin/dids/$DID/route" >/dev/null
}

start_kamailio() {
  local n=$1 mods i
  mods=$(dirname "$(find /usr/lib -path '*kamailio/modules/tm.so' | head -1)")
  mkdir -p "$WORK/$SETUP/kam"
  for i in $(seq 1 "$n"); do echo "1 sip:127.0.0.1:$(sip_port "$i")"; done >"$WORK/$SETUP/kam/dispatcher.list"
  kamailio -DD -E -f "$ROOT/deploy/kamailio/kamailio.cfg" \
    -A "LISTEN=udp:127.0.0.1:$KAM_PORT" -A "DISPATCHER_LIST=\"$WORK/$SETUP/kam/dispatcher.list\"" \
    -A "CARRIER=\"sip:127.0.0.1:$UAS_PORT\"" -A "MODULES=\"$mods/\"" \
    -Y "$WORK/$SETUP/kam" -P "$WORK/$SETUP/kam/kamailio.pid" -w "$WORK/$SETUP/kam" -m 256 -M 16 \
    >"$WORK/$SETUP/kamailio.log" 2>&1 &
  KAM_PID=$!
  PIDS+=("$KAM_PID")
  for _ in $(seq 1 50); do
    [[ -n $(ss -Hlun "sport = :$KAM_PORT") ]] && return 0
    kill -0 "$KAM_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "kamailio did not start; see $WORK/$SETUP/kamailio.log" >&2
  return 1
}

stop_setup() {
  local p
  for p in "${NODE_PIDS[@]}" ${KAM_PID:-}; do kill "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]}" ${KAM_PID:-}; do wait "$p" 2>/dev/null || true; done
  NODE_PIDS=()
  KAM_PID=
}

start_setup() {
  NODE_PIDS=()
  KAM_PID=
  case $SETUP in
    single) start_node 1 sqlite; TARGET=127.0.0.1:$(sip_port 1) ;;
    cluster1 | cluster3)
      as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres --locale=C -T template0 "$SETUP"
      local n=${SETUP#cluster} i
      for i in $(seq 1 "$n"); do start_node "$i" postgres; done
      start_kamailio "$n"
      TARGET=127.0.0.1:$KAM_PORT
      ;;
  esac
  forward_did
}

ticks() { cpu_ticks "$@"; }

# One rate on the running set-up; prints a table row.
step() {
  local rate=$1 count dir limit
  count=$((rate * CALL_SECS))
  dir=$WORK/$SETUP/$rate
  mkdir -p "$dir"
  limit=$((CALL_SECS + HOLD_MS / 1000 + 40))
  local n0 k0 p0 n1 k1 p1 t0 t1
  n0=$(ticks "${NODE_PIDS[@]}") k0=$(ticks ${KAM_PID:-}) p0=$(ticks "$PG_PID")
  t0=$(date +%s.%N)
  (
    cd "$dir"
    TIMEFORMAT='%U %S'
    { time timeout -k 5 "$limit" sipp -sf "$ROOT/tests/sipp/bench_uas.xml" -i 127.0.0.1 \
        -p "$UAS_PORT" -mp "$UAS_MP" -m "$count" -nostdin -buff_size 4194304 \
        -trace_stat -stf uas.csv -fd 1 >uas.out 2>&1; } 2>uas.time
  ) &
  local uas=$!
  PIDS+=("$uas")
  sleep 0.3
  (
    cd "$dir"
    TIMEFORMAT='%U %S'
    { time timeout -k 5 "$limit" sipp "$TARGET" -sf "$ROOT/tests/sipp/bench_uac.xml" -s "$DID" \
        -i 127.0.0.1 -p "$UAC_PORT" -mp "$UAC_MP" -r "$rate" -rp 1000 -m "$count" \
        -d "$HOLD_MS" -nostdin -buff_size 4194304 -timeout "$((limit - 5))s" -timeout_error \
        -trace_stat -stf uac.csv -fd 1 -trace_err -error_file uac_errors.log \
        >uac.out 2>&1; } 2>uac.time
  ) || true
  for _ in $(seq 1 50); do kill -0 "$uas" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$uas" 2>/dev/null; then
    for k in $(ps -o pid= --ppid "$uas"); do kill -TERM "$k" 2>/dev/null || true; done
  fi
  wait "$uas" 2>/dev/null || true
  t1=$(date +%s.%N)
  sleep "$SETTLE_S"
  n1=$(ticks "${NODE_PIDS[@]}") k1=$(ticks ${KAM_PID:-}) p1=$(ticks "$PG_PID")
  local ok failed rtt uac_cpu uas_cpu
  ok=$(stat_col "$dir/uac.csv" 'SuccessfulCall(C)')
  failed=$(stat_col "$dir/uac.csv" 'FailedCall(C)')
  failed=$((count - ok > failed ? count - ok : failed))
  rtt=$(to_ms "$(stat_col "$dir/uac.csv" 'ResponseTime1(C)')")
  uac_cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { c = $1 + $2 } END { if (c != "") printf "%.2f", c; else print "-" }' "$dir/uac.time" 2>/dev/null || echo -)
  uas_cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { c = $1 + $2 } END { if (c != "") printf "%.2f", c; else print "-" }' "$dir/uas.time" 2>/dev/null || echo -)
  per() { awk -v t="$1" -v k="$TICK" -v n="$ok" 'BEGIN { if (n > 0) printf "%.3f", t * 1000 / k / n; else print "-" }'; }
  local pn pk pp total
  pn=$(per $((n1 - n0))) pk=$(per $((k1 - k0))) pp=$(per $((p1 - p0)))
  total=$(per $((n1 - n0 + k1 - k0 + p1 - p0)))
  printf '| %s | %d | %d | %d | %d | %s ms | %s ms | %s ms | %s ms | %s ms | %s s | %s s |\n' \
    "$SETUP" "$rate" "$count" "$ok" "$failed" "$rtt" "$pn" "$pk" "$pp" "$total" "$uac_cpu" "$uas_cpu"
  echo "$SETUP $rate $count $ok $failed $rtt $pn $pk $pp $total" >>"$WORK/results"
}

echo "# bench-cluster: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg), $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ]*' | head -1), $(kamailio -v 2>/dev/null | head -1 || true), PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }')"
echo "# ${CALL_SECS} s of calls per rate, ${HOLD_MS} ms between ACK and BYE, CPU read ${SETTLE_S} s after the last call; work dir $WORK"
start_postgres
echo
echo "| set-up | calls/s | calls | successful | failed | INVITE→200 mean | nodes' CPU per call | Kamailio's | PostgreSQL's | all three | caller SIPp CPU | callee SIPp CPU |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for SETUP in "${SETUPS[@]}"; do
  start_setup
  sleep 2
  first=1
  for rate in "${RATES[@]}"; do
    # Each rate starts with the previous one's SIP transactions expired.
    [[ -n $first ]] || sleep "$GAP_S"
    first=
    step "$rate"
  done
  stop_setup
done
echo
echo "logs: $WORK"
