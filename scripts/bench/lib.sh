# Shared by the bench scripts (sourced): CPU of a process tree, UDP drops of
# a socket, and SIPp's -trace_stat CSV.

# utime+stime (clock ticks) of PID and all its descendants.
cpu_ticks() {
  local total=0 pid stat kids
  for pid in "$@"; do
    if stat=$(cat "/proc/$pid/stat" 2>/dev/null); then
      stat=${stat##*) }  # fields from 3 on (the name may hold spaces)
      set -- $stat
      total=$((total + ${12} + ${13}))
    fi
    kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
    if [[ -n $kids ]]; then total=$((total + $(cpu_ticks $kids))); fi
  done
  echo "$total"
}

# Dropped datagrams of the UDP socket bound to 127.0.0.1:PORT (/proc/net/udp).
udp_drops() {
  local hex
  hex=$(printf '0100007F:%04X' "$1")
  awk -v a="$hex" '$2 == a { print $NF; found = 1 } END { if (!found) print 0 }' /proc/net/udp | head -1
}

# A column of the last line of SIPp's -trace_stat CSV, by name.
stat_col() {
  awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    { v = $c } END { print (c && v != "" ? v : 0) }' "$1"
}

# "h:m:s:us" or "h:m:s" (SIPp's response-time format) to milliseconds.
to_ms() {
  awk -F: '{ if (NF == 4) printf "%.1f", ($1 * 3600 + $2 * 60 + $3) * 1000 + $4 / 1000;
             else if (NF == 3) printf "%.1f", ($1 * 3600 + $2 * 60 + $3) * 1000; else print "-" }' <<<"$1"
}
