#!/bin/bash
# dedupe.sh - what receiving each message once, and acknowledging it,
# costs smtpx-recv, against real peers in the same run, as ratios.
#
#   1. Throughput: Postfix's smtp-source, 20 sessions, 1 KiB messages, each
#      with its own Message-ID, into smtpx-recv storing into a Maildir
#      (every 250 after the message is durable):
#        maildir        --maildir
#        +dedupe        --maildir --dedupe FILE
#        +dedupe+ack    --maildir --dedupe FILE --ack always --ack-via SINK:
#                       an MDN per message, committed to the queue before
#                       the 250 and delivered meanwhile, by the engine's
#                       thread, to a second smtp-sink
#      against Postfix's smtp-sink (nothing stored: the ceiling) and, as
#      root, a private Postfix (smtpd, cleanup, its queue synced: the same
#      promise as a Maildir); RUNS rounds, alternating, medians reported.
#      Every row must store every message: a duplicate Message-ID from the
#      load would make the dedupe rows cheaper, so the files are counted.
#   2. Durable writes per message on the receiving side: fsync and
#      fdatasync calls counted with strace -f -c over a bounded run of
#      SYNC_MSGS messages (the engine's thread included, until its queue
#      is empty), for the three smtpx-recv rows and, as root, Postfix (its
#      master and every process it starts meanwhile).
#
# Usage: bench/dedupe.sh BUILD_DIR
# Env: RUNS (3), MSGS (5000), SYNC_MSGS (1000)
# Everything runs on 127.0.0.1, in a temporary directory under /var/tmp,
# and stops by itself.
set -euo pipefail
B=${1:-build}
RUNS=${RUNS:-3}
MSGS=${MSGS:-5000}
SYNC_MSGS=${SYNC_MSGS:-1000}
RECV="$B/examples/smtpx-recv"
PY=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
# On a disk (/tmp may be a tmpfs, where a sync costs nothing).
tmp=$(mktemp -d /var/tmp/smtpx-bench-dedupe.XXXXXX)
chmod 755 "$tmp" # the private Postfix runs as postfix
pids=()
pf_conf=
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "$pf_conf" ] && /usr/sbin/postfix -c "$pf_conf" stop >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local i
    for ((i = 0; i < 200; i++)); do
        $PY -c "import socket; socket.create_connection(('127.0.0.1',$1),1).recv(1)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
files() { find "$@" -type f 2>/dev/null | wc -l; }
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)

# The acknowledgements' destination, for the whole run.
ack_port=$(free_port)
/usr/sbin/smtp-sink "${sink_user[@]}" -m 5000 "127.0.0.1:$ack_port" 4096 \
    >>"$tmp/acksink.log" 2>&1 &
pids+=($!)
wait_port "$ack_port"

# mode_args MODE DIR: smtpx-recv's arguments for a row
mode_args() {
    case $1 in
    maildir) echo "--maildir $2/Maildir" ;;
    dedupe) echo "--maildir $2/Maildir --dedupe $2/seen" ;;
    ack) echo "--maildir $2/Maildir --dedupe $2/seen --ack always --ack-via 127.0.0.1:$ack_port" ;;
    esac
}

# start_recv MODE DIR PORT: set SERVER_PID (not echoed: a command
# substitution would wait for the server)
start_recv() {
    rm -rf "$2"
    mkdir -p "$2"
    # shellcheck disable=SC2046
    "$RECV" --listen "127.0.0.1:$3" $(mode_args "$1" "$2") --quiet \
        --hostname bench.test --max-sessions 5000 --max-msgs 0 \
        >>"$tmp/recv.log" 2>&1 &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    wait_port "$3"
}
stop_server() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# wait_acks DIR: the acknowledgements' queue is empty (bounded: 300 s)
wait_acks() {
    local i
    for ((i = 0; i < 3000; i++)); do
        [ "$(files "$1/seen.acks/msg")" = 0 ] && return 0
        sleep 0.1
    done
    echo "bench: acknowledgements still queued in $1/seen.acks" >&2
    return 1
}

# source N PORT: smtp-source's load, timed; prints messages/second
source_rate() {
    local n=$1 port=$2 t0 t1
    t0=$(date +%s.%N)
    timeout 600 /usr/sbin/smtp-source -d -s 20 -m "$n" -l 1024 \
        -f bench@example.test -t sink@example.test -M source.example.test \
        "127.0.0.1:$port" >"$tmp/source.log" 2>&1 || {
        echo "bench: smtp-source failed:" >&2; tail -5 "$tmp/source.log" >&2; return 1; }
    t1=$(date +%s.%N)
    awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}

# A private Postfix (root only): smtpd, cleanup and its queue, which it
# syncs before its 250; the discard transport empties the queue.
pf_port=
if [ "$(id -u)" = 0 ] && [ -x /usr/sbin/postfix ]; then
    pf_port=$(free_port)
    mkdir -p "$tmp/postfix"
    $PY - "$here/../tests/interop" "$tmp/postfix" "$pf_port" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from peers import PrivatePostfix
PrivatePostfix(sys.argv[2], int(sys.argv[3]),
               "mynetworks = 127.0.0.0/8\n"
               "smtpd_relay_restrictions = permit_mynetworks, reject\n"
               "default_process_limit = 100\n")
PY
    pf_conf="$tmp/postfix/pf"
fi

echo "== libsmtpx $(grep -o '"[0-9.]*"' include/libsmtpx/version.h), $(nproc) cores, $(uname -r), /var/tmp on $(df --output=fstype /var/tmp | tail -1 | tr -d ' ')"
echo "== Throughput: smtp-source -d -s 20 -m $MSGS -l 1024, unique Message-IDs (messages/second)"
declare -A rate
rows=(maildir dedupe ack)
for ((i = 1; i <= RUNS; i++)); do
    line="  run $i:"
    for m in "${rows[@]}"; do
        port=$(free_port)
        start_recv "$m" "$tmp/$m" "$port"
        r=$(source_rate "$MSGS" "$port")
        n=$(files "$tmp/$m/Maildir/new")
        if [ "$n" != "$MSGS" ]; then
            echo "bench: $m stored $n of $MSGS messages" >&2
            exit 1
        fi
        [ "$m" = ack ] && wait_acks "$tmp/$m"
        stop_server "$SERVER_PID"
        rate[$m]+="$r "
        line+=" $m $r"
    done
    port=$(free_port)
    /usr/sbin/smtp-sink "${sink_user[@]}" -m 5000 "127.0.0.1:$port" 4096 \
        >>"$tmp/sink.log" 2>&1 &
    sp=$!
    pids+=("$sp")
    wait_port "$port"
    r=$(source_rate "$MSGS" "$port")
    stop_server "$sp"
    rate[sink]+="$r "
    line+=" smtp-sink $r"
    if [ -n "$pf_port" ]; then
        r=$(source_rate "$MSGS" "$pf_port")
        rate[postfix]+="$r "
        line+=" postfix $r"
    fi
    echo "$line"
done
med() { tr ' ' '\n' <<<"${rate[$1]}" | grep . | median; }
m_plain=$(med maildir)
m_dedupe=$(med dedupe)
m_ack=$(med ack)
m_sink=$(med sink)
printf "  median msg/s: maildir %s, +dedupe %s, +dedupe+ack %s; smtp-sink %s" \
    "$m_plain" "$m_dedupe" "$m_ack" "$m_sink"
if [ -n "$pf_port" ]; then
    m_pf=$(med postfix)
    printf ", private Postfix %s" "$m_pf"
fi
echo
awk -v p="$m_plain" -v d="$m_dedupe" -v a="$m_ack" -v s="$m_sink" \
    'BEGIN { printf "  ratios: +dedupe/maildir %.2f, +dedupe+ack/maildir %.2f, +dedupe+ack/+dedupe %.2f; maildir/smtp-sink %.2f\n", d / p, a / p, a / d, p / s }'
if [ -n "$pf_port" ]; then
    awk -v p="$m_plain" -v d="$m_dedupe" -v a="$m_ack" -v f="$m_pf" \
        'BEGIN { printf "  against the private Postfix (durable queue): maildir %.2f, +dedupe %.2f, +dedupe+ack %.2f\n", p / f, d / f, a / f }'
fi

# ---- durable writes ------------------------------------------------------
# calls_of FILE SYSCALL: its calls in an strace -c summary, whose lines
# read "% time, seconds, usecs/call, calls, [errors,] syscall"
calls_of() {
    awk -v c="$2" '$NF == c { n = (NF == 6) ? $(NF-2) : $(NF-1) } END { print n + 0 }' "$1"
}
# traced PID OUT COMMAND...: run COMMAND while strace counts PID's syncs
traced() {
    local pid=$1 out=$2 sp i
    shift 2
    strace -f -c -e trace=fsync,fdatasync -p "$pid" -o "$out" 2>>"$tmp/strace.log" &
    sp=$!
    # strace has attached once the process shows a tracer.
    for ((i = 0; i < 100; i++)); do
        [ "$(awk '/^TracerPid/ {print $2}' "/proc/$pid/status")" != 0 ] && break
        sleep 0.05
    done
    "$@"
    kill -INT "$sp"
    wait "$sp" 2>/dev/null || true
}
# sync_load MODE PORT: the load, and (+ack) the engine's deliveries
sync_load() {
    source_rate "$SYNC_MSGS" "$2" >/dev/null
    if [ "$1" = ack ]; then wait_acks "$tmp/s-$1"; fi
}
echo "== Durable writes on the receiving side, $SYNC_MSGS messages (strace -f -c -e trace=fsync,fdatasync)"
for m in "${rows[@]}"; do
    port=$(free_port)
    start_recv "$m" "$tmp/s-$m" "$port"
    traced "$SERVER_PID" "$tmp/strace-$m" sync_load "$m" "$port"

    stop_server "$SERVER_PID"
    n=$(files "$tmp/s-$m/Maildir/new")
    [ "$n" = "$SYNC_MSGS" ] || { echo "bench: $m stored $n of $SYNC_MSGS" >&2; exit 1; }
    fs=$(calls_of "$tmp/strace-$m" fsync)
    fd=$(calls_of "$tmp/strace-$m" fdatasync)
    awk -v m="$m" -v fs="$fs" -v fd="$fd" -v n="$SYNC_MSGS" \
        'BEGIN { printf "  %-8s fsync %6d  fdatasync %6d  per message %.2f\n", m, fs, fd, (fs + fd) / n }'
done
if [ -n "$pf_port" ]; then
    # A fresh instance, so that every smtpd and cleanup is a child started
    # while strace follows the master.
    /usr/sbin/postfix -c "$pf_conf" stop >/dev/null 2>&1 || true
    pf_conf=
    rm -rf "$tmp/postfix"
    mkdir -p "$tmp/postfix"
    pf_port=$(free_port)
    $PY - "$here/../tests/interop" "$tmp/postfix" "$pf_port" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from peers import PrivatePostfix
PrivatePostfix(sys.argv[2], int(sys.argv[3]),
               "mynetworks = 127.0.0.0/8\n"
               "smtpd_relay_restrictions = permit_mynetworks, reject\n"
               "default_process_limit = 100\n")
PY
    pf_conf="$tmp/postfix/pf"
    master=$(tr -d ' ' <"$tmp/postfix/pfq/spool/pid/master.pid")
    # The smtpd processes the readiness check started are killed first.
    /usr/sbin/postfix -c "$pf_conf" reload >/dev/null 2>&1 || true
    sleep 1
    traced "$master" "$tmp/strace-postfix" sync_load postfix "$pf_port"
    fs=$(calls_of "$tmp/strace-postfix" fsync)
    fd=$(calls_of "$tmp/strace-postfix" fdatasync)
    awk -v fs="$fs" -v fd="$fd" -v n="$SYNC_MSGS" \
        'BEGIN { printf "  %-8s fsync %6d  fdatasync %6d  per message %.2f  (its queue file; discarded after)\n", "postfix", fs, fd, (fs + fd) / n }'
fi
echo "  (maildir: the file's fdatasync, new/'s fsync shared by a group; +dedupe: the"
echo "  store's record at check and at processed, shared between sessions; +ack: the"
echo "  MDN's queue file and msg/, then the engine's state writes as it delivers)"
