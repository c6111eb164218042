#!/bin/bash
# run.sh - benchmarks of smtpx-recv against Postfix's smtp-sink, measured in
# the same run on the same machine, printed as ratios.
#
#   1. Throughput: Postfix's smtp-source, 20 sessions, 1 KiB messages,
#      sessions kept open (-d), into `smtpx-recv --discard` and into
#      `smtp-sink`; RUNS rounds, alternating, medians reported.
#   2. Memory per idle session: the library's heap (bench/heap, a counting
#      allocator, no sockets), and resident memory per idle connection of
#      the two servers holding IDLE connections after EHLO.
#
# Usage: bench/run.sh BUILD_DIR     Env: RUNS (3), MSGS (60000), IDLE (1000)
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
B=${1:-build}
RUNS=${RUNS:-3}
MSGS=${MSGS:-60000}
IDLE=${IDLE:-1000}
RECV="$B/examples/smtpx-recv"
PY=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/smtpx-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        $PY -c "import socket; socket.create_connection(('127.0.0.1',$1),1).recv(1)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)

# start_recv PORT / start_sink PORT: start a server in the background and
# set SERVER_PID (not echoed: a command substitution would wait for it).
start_recv() {
    "$RECV" --listen "127.0.0.1:$1" --discard --quiet --hostname bench.test \
        --max-sessions 5000 --max-msgs 0 >>"$tmp/recv.log" 2>&1 &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    wait_port "$1"
}
start_sink() {
    /usr/sbin/smtp-sink "${sink_user[@]}" -m 5000 "127.0.0.1:$1" 4096 \
        >>"$tmp/sink.log" 2>&1 &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    wait_port "$1"
}

# smtp-source prints nothing useful; time it and compute messages/second.
source_rate() {
    local port=$1 t0 t1
    t0=$(date +%s.%N)
    timeout 300 /usr/sbin/smtp-source -d -s 20 -m "$MSGS" -l 1024 \
        -f bench@example.test -t sink@example.test -M source.example.test \
        "127.0.0.1:$port" >"$tmp/source.log" 2>&1 || {
        echo "bench: smtp-source failed:" >&2; tail -5 "$tmp/source.log" >&2; return 1; }
    t1=$(date +%s.%N)
    awk -v n="$MSGS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}

echo "== libsmtpx $(grep -o '"[0-9.]*"' include/libsmtpx/version.h), $(nproc) cores, $(uname -r)"
echo
echo "== Throughput: smtp-source -d -s 20 -m $MSGS -l 1024 (messages/second)"
pr=$(free_port); start_recv "$pr"; rp=$SERVER_PID
ps=$(free_port); start_sink "$ps"; sp=$SERVER_PID
: >"$tmp/r"; : >"$tmp/s"
for ((i = 1; i <= RUNS; i++)); do
    r=$(source_rate "$pr"); s=$(source_rate "$ps")
    echo "$r" >>"$tmp/r"; echo "$s" >>"$tmp/s"
    printf "  run %d: smtpx-recv --discard %6s msg/s   smtp-sink %6s msg/s\n" "$i" "$r" "$s"
done
mr=$(median <"$tmp/r"); ms=$(median <"$tmp/s")
printf "  median: smtpx-recv %s msg/s, smtp-sink %s msg/s, ratio smtpx-recv/smtp-sink = %.2f\n" \
    "$mr" "$ms" "$(awk -v a="$mr" -v b="$ms" 'BEGIN { print a / b }')"
kill "$rp" "$sp"; wait "$rp" "$sp" 2>/dev/null || true

echo
echo "== Memory per idle session"
"$B/bench/heap" 1000 | sed 's/^/  library /'
pr=$(free_port); start_recv "$pr"; rp=$SERVER_PID
ps=$(free_port); start_sink "$ps"; sp=$SERVER_PID
kr=$($PY "$here/idle.py" 127.0.0.1 "$pr" "$IDLE" "$rp")
ks=$($PY "$here/idle.py" 127.0.0.1 "$ps" "$IDLE" "$sp")
printf "  resident memory per idle connection (%d held after EHLO): smtpx-recv %s KiB, smtp-sink %s KiB, ratio %.3f\n" \
    "$IDLE" "$kr" "$ks" "$(awk -v a="$kr" -v b="$ks" 'BEGIN { print a / b }')"
echo "  (smtp-sink is Postfix's test server: it keeps large buffers per connection)"
kill "$rp" "$sp"; wait "$rp" "$sp" 2>/dev/null || true
