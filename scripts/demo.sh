#!/bin/sh
# demo.sh - the library's main job end to end: smtpx-recv listens on
# loopback, Python's smtplib sends it a message (the dialogue is shown), and
# the message stored in the Maildir is printed.
#
# Usage: scripts/demo.sh BUILD_DIR
set -eu
B=${1:-build}
RECV="$B/examples/smtpx-recv"
tmp=$(mktemp -d /tmp/smtpx-demo.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "== smtpx-recv --listen 127.0.0.1:$port --maildir $tmp/Maildir"
"$RECV" --listen "127.0.0.1:$port" --maildir "$tmp/Maildir" \
    --hostname mx.demo.test 2>"$tmp/recv.log" &
pid=$!
i=0
until /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1).recv(1)" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "demo: smtpx-recv did not start"; cat "$tmp/recv.log"; exit 1; }
    sleep 0.05
done

echo
echo "== Python smtplib sends a message (the SMTP dialogue):"
/usr/bin/python3 - "$port" <<'PY'
import smtplib, sys
msg = ("From: Factory Controller <plc7@plant.example>\r\n"
       "To: Operations <ops@plant.example>\r\n"
       "Subject: Line 3 temperature alarm\r\n"
       "Content-Type: text/plain; charset=utf-8\r\n"
       "\r\n"
       "Oven 3 reached 251 \u00b0C at 14:02.\r\n"
       ".this line starts with a dot and arrives intact\r\n"
       "-- \r\nplc7\r\n").encode("utf-8")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="plc7.plant.example") as s:
    s.set_debuglevel(1)
    refused = s.sendmail("plc7@plant.example", ["ops@plant.example"], msg,
                         mail_options=["BODY=8BITMIME"])
    assert not refused, refused
PY

echo
echo "== The receiver's log:"
kill -TERM "$pid"; wait "$pid" || true; pid=
cat "$tmp/recv.log"

echo
f=$(ls "$tmp"/Maildir/new/* | head -1)
echo "== Stored in the Maildir as new/$(basename "$f") (durable before the 250):"
cat "$f"
echo "== demo: ok"
