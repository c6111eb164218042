#!/bin/sh
# demo.sh - the library's main job end to end: smtpx-recv listens on
# loopback, smtpx-send delivers a message to it (the dialogue is shown), and
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
echo "== smtpx-send delivers a message (-v shows the SMTP dialogue):"
SEND="$B/examples/smtpx-send"
printf '%s\n' \
    "From: Factory Controller <plc7@plant.example>" \
    "To: Operations <ops@plant.example>" \
    "Subject: Line 3 temperature alarm" \
    "Content-Type: text/plain; charset=utf-8" \
    "" \
    "Oven 3 reached 251 °C at 14:02." \
    ".this line starts with a dot and arrives intact" \
    "-- " "plc7" >"$tmp/alarm.eml"
"$SEND" --host 127.0.0.1 --port "$port" --helo plc7.plant.example \
    -f plc7@plant.example -t -v <"$tmp/alarm.eml"
echo "(smtpx-send exit status $?: 0 means every recipient accepted)"

echo
echo "== The receiver's log:"
kill -TERM "$pid"; wait "$pid" || true; pid=
cat "$tmp/recv.log"

echo
f=$(ls "$tmp"/Maildir/new/* | head -1)
echo "== Stored in the Maildir as new/$(basename "$f") (durable before the 250):"
cat "$f"
echo "== demo: ok"
