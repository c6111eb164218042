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
#   3. Client throughput into smtp-sink: the library's client engine
#      (bench/sendbench, pipelined) against smtp-source on one and on 20
#      connections, curl, and smtpx-send started once per message.
#   4. TLS: resident memory per idle STARTTLS session of smtpx-recv (and
#      the same without TLS, so that mbedTLS's share shows) against
#      aiosmtpd; and new TLS sessions per second (STARTTLS, one message,
#      QUIT: bench/tlsbench, 4 threads) into smtpx-recv and into aiosmtpd,
#      with the server CPU each session costs.
#   5. Round trips: 20 messages over a 50 ms round trip (bench/rtt.sh:
#      network namespaces and an NFQUEUE delay; root only).
#   6. BDAT against DATA: client throughput and CPU per message into
#      smtpx-recv, 1 KiB and 1 MiB messages, with libESMTP and smtp-source
#      (bench/chunking.sh).
#   7. The mini-MTA (bench/mta.py): durable intake into smtpx-relay against
#      Postfix's smtpd with its real queue, and queue-to-sink delivery
#      against Postfix relaying to the same sink (root only).
#   8. A good client's session time while the server is under attack
#      (bench/attacks.py: slowloris, idle floods, clients that never read,
#      10,000 recipients, AUTH guessing), smtpx-recv against Postfix.
#
# Usage: bench/run.sh BUILD_DIR
# Env: RUNS (3), MSGS (60000), IDLE (1000), CMSGS (20000), CURL_MSGS (500),
#      TLS_IDLE (300), TLS_SESSIONS (2000)
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
B=${1:-build}
RUNS=${RUNS:-3}
MSGS=${MSGS:-60000}
CMSGS=${CMSGS:-20000}
CURL_MSGS=${CURL_MSGS:-500}
IDLE=${IDLE:-1000}
TLS_IDLE=${TLS_IDLE:-300}
TLS_SESSIONS=${TLS_SESSIONS:-2000}
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

echo
echo "== Client throughput to smtp-sink: $CMSGS messages of 1 KiB (messages/second)"
ps=$(free_port); start_sink "$ps"; sp=$SERVER_PID
msg="$tmp/msg.eml"
$PY - "$msg" <<'PY'
import sys
body = "From: <bench@example.test>\r\nTo: <sink@example.test>\r\nSubject: bench\r\n\r\n"
body += ("x" * 76 + "\r\n") * 13
open(sys.argv[1], "w", newline="").write(body)
PY
{
    echo "silent"; echo "show-error"
    echo "mail-from = \"bench@example.test\""; echo "mail-rcpt = \"sink@example.test\""
    for ((i = 0; i < CURL_MSGS; i++)); do
        echo "url = \"smtp://127.0.0.1:$ps/curl.example.test\""
        echo "upload-file = \"$msg\""
    done
} >"$tmp/curl.cfg"
rate() {   # rate N COMMAND... -> messages/second
    local n=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    timeout 300 "$@" >"$tmp/rate.log" 2>&1 || { echo "bench: $1 failed" >&2; tail -3 "$tmp/rate.log" >&2; return 1; }
    t1=$(date +%s.%N)
    awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n / (b - a) }'
}
: >"$tmp/e1"; : >"$tmp/s1"; : >"$tmp/e20"; : >"$tmp/s20"; : >"$tmp/cu"; : >"$tmp/sp"
for ((i = 1; i <= RUNS; i++)); do
    e1=$(rate "$CMSGS" "$B/bench/sendbench" 127.0.0.1 "$ps" "$CMSGS" 1)
    s1=$(rate "$CMSGS" /usr/sbin/smtp-source -d -s 1 -m "$CMSGS" -l 1024 \
        -f bench@example.test -t sink@example.test "127.0.0.1:$ps")
    e20=$(rate "$CMSGS" "$B/bench/sendbench" 127.0.0.1 "$ps" "$CMSGS" 1 20)
    s20=$(rate "$CMSGS" /usr/sbin/smtp-source -d -s 20 -m "$CMSGS" -l 1024 \
        -f bench@example.test -t sink@example.test "127.0.0.1:$ps")
    cu=$(rate "$CURL_MSGS" curl -K "$tmp/curl.cfg")
    sp_=$(rate "$CURL_MSGS" bash -c "for i in \$(seq $CURL_MSGS); do $B/examples/smtpx-send -q --host 127.0.0.1 --port $ps -f bench@example.test sink@example.test <$msg || exit 1; done")
    echo "$e1" >>"$tmp/e1"; echo "$s1" >>"$tmp/s1"; echo "$e20" >>"$tmp/e20"
    echo "$s20" >>"$tmp/s20"; echo "$cu" >>"$tmp/cu"; echo "$sp_" >>"$tmp/sp"
    printf "  run %d: engine 1 session %6s, smtp-source -s 1 %6s, engine 20 sessions %6s, smtp-source -s 20 %6s, curl %5s, smtpx-send per message %5s\n" \
        "$i" "$e1" "$s1" "$e20" "$s20" "$cu" "$sp_"
done
m_e1=$(median <"$tmp/e1"); m_s1=$(median <"$tmp/s1"); m_e20=$(median <"$tmp/e20")
m_s20=$(median <"$tmp/s20"); m_cu=$(median <"$tmp/cu"); m_sp=$(median <"$tmp/sp")
printf "  median, one connection:   libsmtpx engine %s msg/s, smtp-source %s msg/s (ratio %.2f), curl %s msg/s (ratio %.1f)\n" \
    "$m_e1" "$m_s1" "$(awk -v a="$m_e1" -v b="$m_s1" 'BEGIN{print a/b}')" "$m_cu" "$(awk -v a="$m_e1" -v b="$m_cu" 'BEGIN{print a/b}')"
printf "  median, 20 connections:   libsmtpx engine %s msg/s, smtp-source %s msg/s (ratio %.2f)\n" \
    "$m_e20" "$m_s20" "$(awk -v a="$m_e20" -v b="$m_s20" 'BEGIN{print a/b}')"
printf "  median, a process per message: smtpx-send %s msg/s (curl, one process for all, %s msg/s)\n" "$m_sp" "$m_cu"
kill "$sp"; wait "$sp" 2>/dev/null || true

echo
echo "== TLS (STARTTLS; the ECDSA P-256 test certificate of tests/data/tls)"
certs="$here/../tests/data/tls"
aio="$here/../tests/interop/aio_server.py"
start_recv_tls() {
    "$RECV" --listen "127.0.0.1:$1" --discard --quiet --hostname mx.test \
        --tls-cert "$certs/server.pem" --tls-key "$certs/server.key" \
        --max-sessions 5000 --max-msgs 0 >>"$tmp/recv.log" 2>&1 &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    wait_port "$1"
}
start_aio_tls() {
    $PY "$aio" "$1" - "$certs/server.pem" "$certs/server.key" \
        >>"$tmp/aio.log" 2>&1 &
    SERVER_PID=$!
    pids+=("$SERVER_PID")
    wait_port "$1"
}
pr=$(free_port); start_recv_tls "$pr"; rp=$SERVER_PID
kp=$($PY "$here/idle.py" 127.0.0.1 "$pr" "$TLS_IDLE" "$rp")
kt=$($PY "$here/idle.py" 127.0.0.1 "$pr" "$TLS_IDLE" "$rp" tls)
pa=$(free_port); start_aio_tls "$pa"; ap=$SERVER_PID
ka=$($PY "$here/idle.py" 127.0.0.1 "$pa" "$TLS_IDLE" "$ap" tls)
printf "  resident memory per idle connection (%d held): smtpx-recv %s KiB in clear text, %s KiB under TLS (mbedTLS's share %.1f KiB); aiosmtpd under TLS %s KiB; ratio smtpx-recv/aiosmtpd %.3f\n" \
    "$TLS_IDLE" "$kp" "$kt" "$(awk -v a="$kt" -v b="$kp" 'BEGIN { print a - b }')" \
    "$ka" "$(awk -v a="$kt" -v b="$ka" 'BEGIN { print a / b }')"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# tls_round SERVER_PORT SERVER_PID N LEVEL -> "sessions/s server-ms/session"
tls_round() {
    local c0 c1 rate
    c0=$(cpu_ticks "$2")
    rate=$("$B/bench/tlsbench" 127.0.0.1 "$1" "$3" 4 "$certs/ca.pem" mx.test $4 | awk '{print $1}')
    c1=$(cpu_ticks "$2")
    echo "$rate $(awk -v a="$c0" -v b="$c1" -v n="$3" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) * 1000 / hz / n }')"
}
: >"$tmp/tr"; : >"$tmp/ta"; : >"$tmp/tcr"; : >"$tmp/tca"; : >"$tmp/tvr"; : >"$tmp/tva"
for ((i = 1; i <= RUNS; i++)); do
    read -r r rc < <(tls_round "$pr" "$rp" "$TLS_SESSIONS" encrypt)
    read -r a ac < <(tls_round "$pa" "$ap" "$((TLS_SESSIONS / 2))" encrypt)
    read -r vr _ < <(tls_round "$pr" "$rp" "$((TLS_SESSIONS / 4))" "")
    read -r va _ < <(tls_round "$pa" "$ap" "$((TLS_SESSIONS / 4))" "")
    echo "$r" >>"$tmp/tr"; echo "$a" >>"$tmp/ta"; echo "$rc" >>"$tmp/tcr"; echo "$ac" >>"$tmp/tca"
    echo "$vr" >>"$tmp/tvr"; echo "$va" >>"$tmp/tva"
    printf "  run %d: new TLS sessions, 1 message each: smtpx-recv %5s/s (%s ms of server CPU each), aiosmtpd %5s/s (%s ms); with a verifying client: %s/s and %s/s\n" \
        "$i" "$r" "$rc" "$a" "$ac" "$vr" "$va"
done
mr=$(median <"$tmp/tr"); ma=$(median <"$tmp/ta"); mcr=$(median <"$tmp/tcr"); mca=$(median <"$tmp/tca")
mvr=$(median <"$tmp/tvr"); mva=$(median <"$tmp/tva")
printf "  median: smtpx-recv %s sessions/s, aiosmtpd %s sessions/s, ratio %.2f; server CPU per session %s ms vs %s ms (ratio %.2f)\n" \
    "$mr" "$ma" "$(awk -v a="$mr" -v b="$ma" 'BEGIN { print a / b }')" "$mcr" "$mca" \
    "$(awk -v a="$mcr" -v b="$mca" 'BEGIN { print a / b }')"
printf "  median with a verifying client (its ECDSA checks dominate): smtpx-recv %s/s, aiosmtpd %s/s\n" "$mvr" "$mva"
echo "  (client: bench/tlsbench, libsmtpx, 4 threads; aiosmtpd's TLS is OpenSSL)"
kill "$rp" "$ap"; wait "$rp" "$ap" 2>/dev/null || true

echo
"$here/rtt.sh" "$B" 20 25

echo
RUNS=$RUNS "$here/chunking.sh" "$B"

echo
if [ "$(id -u)" = 0 ]; then
    $PY "$here/mta.py" "$B"
else
    echo "== smtpx-relay against Postfix: skipped (needs root)"
fi

echo
$PY "$here/attacks.py" "$B"
