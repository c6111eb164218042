#!/bin/bash
# chunking.sh - client throughput into `smtpx-recv --discard` over one
# connection, the content sent with BDAT (CHUNKING, RFC 3030) and with
# DATA, for 1 KiB and 1 MiB messages; in the same run libESMTP (the other
# C client library) and Postfix's smtp-source send the same number of
# messages of the same size.  Printed: messages per second and the
# client's CPU per message (user + system, from bash's time), medians of
# RUNS rounds, and ratios.
#
# Usage: bench/chunking.sh BUILD_DIR
# Env: RUNS (3), SMALL (20000 messages of 1 KiB), LARGE (300 of 1 MiB)
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
B=${1:-build}
RUNS=${RUNS:-3}
SMALL=${SMALL:-20000}
LARGE=${LARGE:-300}
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/smtpx-chunking.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$B/examples/smtpx-recv" --listen "127.0.0.1:$port" --discard --quiet \
    --max-msgs 0 --max-size 0 --hostname bench.test >"$tmp/recv.log" 2>&1 &
pid=$!
for ((i = 0; i < 100; i++)); do
    $PY -c "import socket; socket.create_connection(('127.0.0.1',$port),1).recv(1)" 2>/dev/null && break
    sleep 0.05
done

# The message bench/sendbench sends: three header lines and 76-octet lines
# up to the size.
message() {
    $PY - "$1" "$2" <<'PY'
import sys
kb = int(sys.argv[2])
body = "From: <bench@example.test>\r\nTo: <sink@example.test>\r\nSubject: bench\r\n\r\n"
n = len(body)
lines = (kb * 1024 - n) // 78
open(sys.argv[1], "w", newline="").write(body + ("x" * 76 + "\r\n") * lines)
PY
}

# measure N COMMAND... -> "messages/s CPU-us/message"
measure() {
    local n=$1 t
    shift
    TIMEFORMAT='%R %U %S'
    { time timeout 600 "$@" >"$tmp/out" 2>&1; } 2>"$tmp/time" ||
        { echo "chunking: $1 failed" >&2; tail -3 "$tmp/out" >&2; return 1; }
    read -r t u s <"$tmp/time"
    awk -v n="$n" -v t="$t" -v u="$u" -v s="$s" \
        'BEGIN { printf "%.0f %.1f\n", n / t, (u + s) * 1e6 / n }'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

size_round() {   # size_round LABEL KB N
    local label=$1 kb=$2 n=$3 k r c
    message "$tmp/msg.eml" "$kb"
    for k in bdat data libesmtp source; do : >"$tmp/$k.r"; : >"$tmp/$k.c"; done
    for ((i = 1; i <= RUNS; i++)); do
        read -r r c < <(measure "$n" "$B/bench/sendbench" 127.0.0.1 "$port" "$n" "$kb" 1 bdat)
        echo "$r" >>"$tmp/bdat.r"; echo "$c" >>"$tmp/bdat.c"
        read -r r c < <(measure "$n" "$B/bench/sendbench" 127.0.0.1 "$port" "$n" "$kb" 1 data)
        echo "$r" >>"$tmp/data.r"; echo "$c" >>"$tmp/data.c"
        read -r r c < <(measure "$n" "$B/bench/libesmtp" "127.0.0.1:$port" "$n" "$tmp/msg.eml")
        echo "$r" >>"$tmp/libesmtp.r"; echo "$c" >>"$tmp/libesmtp.c"
        read -r r c < <(measure "$n" /usr/sbin/smtp-source -d -s 1 -m "$n" \
            -l "$((kb * 1024))" -f bench@example.test -t sink@example.test \
            "127.0.0.1:$port")
        echo "$r" >>"$tmp/source.r"; echo "$c" >>"$tmp/source.c"
        printf "  %s run %d: BDAT %s, DATA %s, libESMTP %s, smtp-source %s msg/s\n" "$label" "$i" \
            "$(tail -1 "$tmp/bdat.r")" "$(tail -1 "$tmp/data.r")" \
            "$(tail -1 "$tmp/libesmtp.r")" "$(tail -1 "$tmp/source.r")"
    done
    for k in bdat data libesmtp source; do
        eval "m_${k}_r=$(median <"$tmp/$k.r")"
        eval "m_${k}_c=$(median <"$tmp/$k.c")"
    done
    printf "  %s median msg/s:  libsmtpx BDAT %s, DATA %s (BDAT/DATA %.2f); libESMTP %s (%.2f); smtp-source %s (%.2f)\n" \
        "$label" "$m_bdat_r" "$m_data_r" "$(awk -v a="$m_bdat_r" -v b="$m_data_r" 'BEGIN{print a/b}')" \
        "$m_libesmtp_r" "$(awk -v a="$m_bdat_r" -v b="$m_libesmtp_r" 'BEGIN{print a/b}')" \
        "$m_source_r" "$(awk -v a="$m_bdat_r" -v b="$m_source_r" 'BEGIN{print a/b}')"
    printf "  %s median client CPU us/msg: libsmtpx BDAT %s, DATA %s; libESMTP %s (x%.2f of BDAT); smtp-source %s (x%.2f)\n" \
        "$label" "$m_bdat_c" "$m_data_c" "$m_libesmtp_c" \
        "$(awk -v a="$m_libesmtp_c" -v b="$m_bdat_c" 'BEGIN{print a/b}')" \
        "$m_source_c" "$(awk -v a="$m_source_c" -v b="$m_bdat_c" 'BEGIN{print a/b}')"
}

echo "== Client throughput into smtpx-recv --discard, one connection: BDAT vs DATA"
size_round "1 KiB" 1 "$SMALL"
size_round "1 MiB" 1024 "$LARGE"
echo "  (libESMTP pipelines MAIL/RCPT/DATA but sends no BDAT; smtp-source sends"
echo "   DATA, one command at a time; ratios are libsmtpx BDAT over the other)"
