#!/bin/bash
# msg.sh - the message layer's benchmarks, printed as ratios measured in the
# same run on the same machine:
#
#   1. Parse and decode throughput of libsmtpx's streaming parser
#      (bench/msgbench) against GMime 3 (bench/gmimebench, Debian's
#      libgmime-3.0) and Python's email package (bench/msgbench.py), on a
#      50 MiB message with base64 attachments and on a corpus of small
#      messages (bench/msgdata.py, a fixed seed).  Each tool reads the
#      files, parses them and decodes every part; best of RUNS rounds.
#   2. Peak resident memory while parsing the 50 MiB message, above each
#      program's own resident memory before it parses; and the parser's
#      own heap (a counting allocator) on a 1 GiB base64 attachment made
#      as it is fed.
#   3. Build and send: smtpx-send --attach with a 1 MiB and a 100 MiB
#      attachment into smtpx-recv --discard over loopback; the sender's
#      peak resident memory should not grow with the attachment.
#   4. 8-bit to 7-bit: a message of 8-bit UTF-8 text parts made 7-bit
#      (quoted-printable) by smtpx_msg_downgrade, GMime 3
#      (g_mime_object_encode, 7-bit constraint) and Python's email
#      (BytesGenerator with cte_type 7bit); best of RUNS rounds (Python:
#      one).
#
# Usage: bench/msg.sh BUILD_DIR
# Env: RUNS (5), SMALL (2000 small messages), BIG_MIB (100), STREAM_MIB
#      (1024), DG_MIB (16)
set -euo pipefail
B=${1:-build}
RUNS=${RUNS:-5}
SMALL=${SMALL:-2000}
BIG_MIB=${BIG_MIB:-100}
PY=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
data="$B/bench/msgdata"
tmp=$(mktemp -d /tmp/smtpx-msgbench.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -f "$data/big.eml" ] || [ "$here/msgdata.py" -nt "$data/big.eml" ] ||
    [ "$(ls "$data/small" | wc -l)" != "$SMALL" ]; then
    echo "msg: writing the messages into $data (Python's email package)"
    rm -rf "$data"
    $PY "$here/msgdata.py" "$data" "$SMALL"
fi
big="$data/big.eml"
small=("$data"/small/*.eml)

# run NAME ROUNDS FILES... -> "octets seconds decoded parts base_kib peak_kib"
run() {
    local name=$1 rounds=$2
    shift 2
    case $name in
    smtpx) "$B/bench/msgbench" "$rounds" "$@" ;;
    gmime) "$B/bench/gmimebench" "$rounds" "$@" ;;
    python) $PY "$here/msgbench.py" "$rounds" "$@" ;;
    esac
}

echo "== 1. Parse and decode: a $(($(stat -c %s "$big") / 1048576)) MiB message with base64 attachments, and ${#small[@]} small messages ($(du -sm "$data/small" | cut -f1) MiB)"
declare -A secs mbps dec parts base peak
for set in big small; do
    if [ $set = big ]; then files=("$big"); else files=("${small[@]}"); fi
    for tool in smtpx gmime python; do
        rounds=$RUNS
        [ $tool = python ] && rounds=1
        read -r total s d p b m < <(run $tool $rounds "${files[@]}")
        secs[$set.$tool]=$s
        mbps[$set.$tool]=$(awk -v t="$total" -v s="$s" 'BEGIN { printf "%.0f", t / s / 1e6 }')
        dec[$set.$tool]=$d
        parts[$set.$tool]=$p
        base[$set.$tool]=$b
        peak[$set.$tool]=$m
        printf "  %-5s %-6s %8.3f s  %6s MB/s  %d parts, %d octets decoded\n" \
            $set $tool "$s" "${mbps[$set.$tool]}" "$p" "$d"
    done
    if [ "${dec[$set.smtpx]}" != "${dec[$set.gmime]}" ] ||
        [ "${dec[$set.smtpx]}" != "${dec[$set.python]}" ]; then
        echo "  note: the tools decoded different amounts (see above)"
    fi
    printf "  %-5s ratio: libsmtpx is %.2fx as fast as GMime 3, %.1fx as fast as Python's email\n" \
        $set "$(awk -v a="${secs[$set.gmime]}" -v b="${secs[$set.smtpx]}" 'BEGIN { print a / b }')" \
        "$(awk -v a="${secs[$set.python]}" -v b="${secs[$set.smtpx]}" 'BEGIN { print a / b }')"
done

echo
echo "== 2. Peak resident memory parsing the $(($(stat -c %s "$big") / 1048576)) MiB message (above the program's own before parsing)"
for tool in smtpx gmime python; do
    printf "  %-6s baseline %6d KiB, peak %6d KiB, growth %6d KiB\n" $tool \
        "${base[big.$tool]}" "${peak[big.$tool]}" \
        $((${peak[big.$tool]} - ${base[big.$tool]}))
done

read -r fed s d hp < <("$B/bench/msgbench" stream "${STREAM_MIB:-1024}")
printf "  a %d MiB base64 attachment, made as it is fed: %.2f s (%.0f MB/s), %d MiB decoded, parser heap at its peak %d octets\n" \
    "${STREAM_MIB:-1024}" "$s" "$(awk -v f="$fed" -v s="$s" 'BEGIN { print f / s / 1e6 }')" $((d / 1048576)) "$hp"

echo
echo "== 3. Build and send (smtpx-send --attach into smtpx-recv --discard): peak resident memory of the sender"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$B/examples/smtpx-recv" --listen "127.0.0.1:$port" --discard -q \
    --max-size $(((BIG_MIB + 10) * 1048576 * 4 / 3)) 2>"$tmp/recv.log" &
pid=$!
for ((i = 0; i < 100; i++)); do
    $PY -c "import socket; socket.create_connection(('127.0.0.1',$port),1).recv(1)" 2>/dev/null && break
    sleep 0.05
done
for mib in 1 "$BIG_MIB"; do
    head -c $((mib * 1048576)) /dev/urandom >"$tmp/att-$mib.bin"
    read -r rss secs_send rc < <($PY - "$B/examples/smtpx-send" "$port" "$tmp/att-$mib.bin" <<'PYEOF'
import resource, subprocess, sys, time
send, port, att = sys.argv[1:4]
t0 = time.monotonic()
r = subprocess.run([send, "--host", "127.0.0.1", "--port", port, "-q",
                    "-f", "bench@example.org", "--subject", "bench",
                    "--attach", att, "sink@example.org"],
                   stdin=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
      "%.2f" % (time.monotonic() - t0), r)
PYEOF
)
    [ "$rc" = 0 ] || { echo "msg: smtpx-send failed ($rc)"; cat "$tmp/recv.log"; exit 1; }
    eval "rss_$mib=$rss"
    printf "  %4d MiB attachment: peak RSS %6d KiB, %s s (%.0f MB/s of attachment)\n" \
        "$mib" "$rss" "$secs_send" "$(awk -v m="$mib" -v s="$secs_send" 'BEGIN { print m * 1.048576 / s }')"
    rm -f "$tmp/att-$mib.bin"
done
eval "r1=\$rss_1; rb=\$rss_$BIG_MIB"
printf "  growth from 1 MiB to %d MiB: %d KiB\n" "$BIG_MIB" $((rb - r1))

echo
echo "== 4. 8-bit to 7-bit (for a server without 8BITMIME): a ${DG_MIB:-16} MiB message of UTF-8 text parts sent 8bit"
# A multipart/mixed of text/plain parts in UTF-8 (about one octet in ten
# 8-bit), each labelled 8bit, and one base64 attachment that stays as it
# is; made with a fixed seed.
$PY - "$tmp/8bit.eml" "${DG_MIB:-16}" <<'PYEOF'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(8)
words = ["caf\u00e9", "cr\u00e8me", "br\u00fbl\u00e9e", "stra\u00dfe",
         "gr\u00fc\u00dfe", "na\u00efve", "r\u00e9sum\u00e9", "order",
         "quantity", "shipped", "warehouse", "pallet", "the", "of", "and"]
out = [b"From: orders@example.org\r\nTo: ops@example.net\r\n"
       b"Subject: orders\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/mixed; boundary=\"b-8bit\"\r\n\r\n"]
size, part = 0, 0
while size < mib << 20:
    lines = []
    for _ in range(16384):
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(6, 12)))
        lines.append(line.encode())
    body = b"\r\n".join(lines) + b"\r\n"
    out.append(b"--b-8bit\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body)
    size += len(body)
    part += 1
out.append(b"--b-8bit\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" +
           b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n" * 1000 + b"--b-8bit--\r\n")
open(path, "wb").write(b"".join(out))
PYEOF
declare -A dsecs dout
for tool in smtpx gmime python; do
    case $tool in
    smtpx) read -r din s o b m < <("$B/bench/msgbench" downgrade "$RUNS" "$tmp/8bit.eml") ;;
    gmime) read -r din s o b m < <("$B/bench/gmimebench" downgrade "$RUNS" "$tmp/8bit.eml") ;;
    python) read -r din s o b m < <($PY - "$tmp/8bit.eml" <<'PYEOF'
import email, email.generator, email.policy, io, resource, sys, time
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * \
        (resource.getpagesize() // 1024)
base = rss()
data = open(sys.argv[1], "rb").read()
t0 = time.monotonic()
msg = email.message_from_bytes(data, policy=email.policy.default)
out = io.BytesIO()
email.generator.BytesGenerator(
    out, policy=email.policy.default.clone(cte_type="7bit")).flatten(msg)
print(len(data), "%.6f" % (time.monotonic() - t0), len(out.getvalue()), base,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
PYEOF
) ;;
    esac
    dsecs[$tool]=$s
    dout[$tool]=$o
    printf "  %-6s %8.3f s  %6.0f MB/s  %d octets in, %d out; resident memory grew %d KiB\n" \
        $tool "$s" "$(awk -v t="$din" -v s="$s" 'BEGIN { print t / s / 1e6 }')" \
        "$din" "$o" $((m - b))
done
printf "  ratio: libsmtpx is %.2fx as fast as GMime 3, %.1fx as fast as Python's email\n" \
    "$(awk -v a="${dsecs[gmime]}" -v b="${dsecs[smtpx]}" 'BEGIN { print a / b }')" \
    "$(awk -v a="${dsecs[python]}" -v b="${dsecs[smtpx]}" 'BEGIN { print a / b }')"
