#!/bin/bash
# rtt.sh - how long do 20 messages take over a 50 ms round trip?
#
# Two network namespaces made here (smtpx-rtt-s, smtpx-rtt-c) joined by a
# veth pair; each end delays its outgoing packets by DELAY ms (25: a 50 ms
# round trip) with bench/nfq-delay through an iptables NFQUEUE rule, since
# this kernel has no netem.  Three servers run in one namespace: Postfix's
# smtp-sink (PIPELINING, no CHUNKING), smtpx-recv --discard and a private
# Postfix smtpd (both PIPELINING and CHUNKING).  From the other, each client
# sends N messages of 1 KiB over one connection:
#   smtpx-send BDAT   smtpx-send --batch: every transaction in BDAT chunks,
#                     pipelined back to back (RFC 3030, 2920)
#   smtpx-send DATA   the same with --data: a round trip per message for
#                     the 354
#   engine            the client engine (bench/sendbench), as before
#   libESMTP          the other C client library, pipelined
#   smtp-source       Postfix's load generator, lock-step
#   smtplib           Python's smtplib, lock-step
#   curl              one curl run with N URLs (curl reuses its connection)
# Prints seconds and round trips (seconds / RTT) per client and server.
# Everything made here is removed on exit; every step is bounded.
#
# Usage: bench/rtt.sh BUILD_DIR [N] [DELAY_MS]      (needs root)
set -euo pipefail
B=${1:-build}
N=${2:-20}
DELAY=${3:-25}
S=smtpx-rtt-s C=smtpx-rtt-c
SIP=10.201.0.1 CIP=10.201.0.2 PORT=2525 RPORT=2526 PPORT=2527
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/smtpx-rtt.XXXXXX)
chmod 755 "$tmp" # the private Postfix runs as postfix
pids=()
cleanup() {
    [ -n "${pfdir:-}" ] && ip netns exec $S /usr/sbin/postfix -c "$pfdir/pf" stop \
        >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del $S 2>/dev/null || true
    ip netns del $C 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
if [ "$(id -u)" != 0 ]; then
    echo "rtt: needs root (network namespaces); skipped"
    exit 0
fi
ip netns del $S 2>/dev/null || true
ip netns del $C 2>/dev/null || true
ip netns add $S
ip netns add $C
ip link add smtpx-rtt-a type veth peer name smtpx-rtt-b
ip link set smtpx-rtt-a netns $S
ip link set smtpx-rtt-b netns $C
ip -n $S addr add $SIP/30 dev smtpx-rtt-a
ip -n $C addr add $CIP/30 dev smtpx-rtt-b
for ns in $S $C; do ip -n $ns link set lo up; done
ip -n $S link set smtpx-rtt-a up
ip -n $C link set smtpx-rtt-b up
ip netns exec $S iptables -A OUTPUT -o smtpx-rtt-a -j NFQUEUE --queue-num 101
ip netns exec $C iptables -A OUTPUT -o smtpx-rtt-b -j NFQUEUE --queue-num 102
ip netns exec $S "$B/bench/nfq-delay" 101 "$DELAY" 600 & pids+=($!)
ip netns exec $C "$B/bench/nfq-delay" 102 "$DELAY" 600 & pids+=($!)
user=()
[ "$(id -u)" = 0 ] && user=(-u nobody)
ip netns exec $S timeout 600 /usr/sbin/smtp-sink "${user[@]}" "$SIP:$PORT" 256 \
    >/dev/null 2>&1 & pids+=($!)
ip netns exec $S timeout 600 "$B/examples/smtpx-recv" --listen "$SIP:$RPORT" \
    --discard --hostname recv.test -q & pids+=($!)
pfdir="$tmp/postfix"
mkdir -p "$pfdir"
ip netns exec $S $PY - "$here/../tests/interop" "$pfdir" "$SIP" "$PPORT" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from peers import PrivatePostfix
PrivatePostfix(sys.argv[2], int(sys.argv[4]),
               "mynetworks = 10.201.0.0/30\n"
               "smtpd_relay_restrictions = permit_mynetworks, reject\n",
               addr=sys.argv[3])
PY

# The round trip, measured: TCP connects from the client namespace.
rtt=$(ip netns exec $C $PY - "$SIP" "$PORT" <<'PY'
import socket, sys, time
best = 1e9
for _ in range(5):
    t = time.monotonic()
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10)
    best = min(best, time.monotonic() - t)
    s.recv(512)
    s.close()
print("%.4f" % best)
PY
)
printf "== %d messages of 1 KiB over one connection, a %.1f ms round trip\n" "$N" "$(awk -v r="$rtt" 'BEGIN{print r*1000}')"

msg="$tmp/msg.eml"
$PY - "$msg" "$tmp/batch" "$N" <<'PY'
import os, sys
body = "From: <bench@example.test>\r\nTo: <sink@example.test>\r\nSubject: rtt\r\n\r\n"
body += ("x" * 76 + "\r\n") * 13
open(sys.argv[1], "w", newline="").write(body)
os.makedirs(sys.argv[2])
for i in range(int(sys.argv[3])):
    open(os.path.join(sys.argv[2], "m%04d" % i), "w", newline="").write(body)
PY
{
    echo "silent"; echo "show-error"
    echo "mail-from = \"bench@example.test\""; echo "mail-rcpt = \"sink@example.test\""
    for ((i = 0; i < N; i++)); do
        echo "url = \"smtp://$SIP:$PORT/curl.example.test\""
        echo "upload-file = \"$msg\""
    done
} >"$tmp/curl.cfg"

run() {   # run NAME SERVER COMMAND...  -> prints seconds and round trips
    local name=$1 server=$2 t0 t1
    shift 2
    t0=$(date +%s.%N)
    if ! timeout 300 ip netns exec $C "$@" >"$tmp/out" 2>&1; then
        echo "rtt: $name to $server failed:" >&2; tail -3 "$tmp/out" >&2; return 1
    fi
    t1=$(date +%s.%N)
    awk -v n="$name" -v s="$server" -v a="$t0" -v b="$t1" -v r="$rtt" \
        'BEGIN { printf "  %-17s %-11s %7.3f s  %5.1f round trips\n", n, s, b - a, (b - a) / r }'
}
curlcfg() {   # curlcfg PORT -> a curl config sending N messages there
    echo "silent"; echo "show-error"
    echo "mail-from = \"bench@example.test\""; echo "mail-rcpt = \"sink@example.test\""
    for ((i = 0; i < N; i++)); do
        echo "url = \"smtp://$SIP:$1/curl.example.test\""
        echo "upload-file = \"$msg\""
    done
}
smtplib() {   # smtplib PORT
    echo "
import smtplib
msg = open('$msg', 'rb').read()
s = smtplib.SMTP('$SIP', $1, local_hostname='smtplib.example.test', timeout=60)
for i in range($N):
    s.sendmail('bench@example.test', ['sink@example.test'], msg)
s.quit()"
}
SEND=("$B/examples/smtpx-send" --host "$SIP" --helo send.example.test
      -f bench@example.test -q --batch "$tmp/batch")
for server in smtpx-recv:$RPORT postfix:$PPORT; do
    name=${server%:*} port=${server#*:}
    curlcfg "$port" >"$tmp/curl-$port.cfg"
    run "smtpx-send BDAT" "$name" "${SEND[@]}" --port "$port" sink@example.test
    run "smtpx-send DATA" "$name" "${SEND[@]}" --port "$port" --data sink@example.test
    run libESMTP "$name" "$B/bench/libesmtp" "$SIP:$port" "$N" "$msg"
    run smtplib "$name" $PY -c "$(smtplib "$port")"
    run curl "$name" curl -K "$tmp/curl-$port.cfg"
done
curlcfg "$PORT" >"$tmp/curl.cfg"
run engine smtp-sink "$B/bench/sendbench" "$SIP" "$PORT" "$N" 1
run smtp-source smtp-sink /usr/sbin/smtp-source -d -s 1 -m "$N" -l 1024 \
    -f bench@example.test -t sink@example.test "$SIP:$PORT"
