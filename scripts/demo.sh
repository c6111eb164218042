#!/bin/sh
# demo.sh - the library's main job end to end: smtpx-recv listens on
# loopback with a certificate made here, smtpx-send delivers a message to it
# over STARTTLS, verifying the certificate and logging in with SCRAM-SHA-256
# (the dialogue is shown, credentials redacted), and the message stored in
# the Maildir is printed.  Then smtpx-send builds a message with an
# attachment (MIME, from <libsmtpx/msg.h>), and smtpx-mime lists the stored
# message and extracts the attachment, which is compared with the original.
# Last, two systems exchange orders exactly once: smtpx-orders mails each
# order as an attachment and waits for its acknowledgement, smtpx-warehouse
# stores each once in its ledger and acknowledges it; an order sent while
# the warehouse is down is resent, and still stored once.
#
# Usage: scripts/demo.sh BUILD_DIR
set -eu
B=${1:-build}
RECV="$B/examples/smtpx-recv"
SEND="$B/examples/smtpx-send"
MIME="$B/examples/smtpx-mime"
ORDERS="$B/examples/smtpx-orders"
WAREHOUSE="$B/examples/smtpx-warehouse"
tmp=$(mktemp -d /tmp/smtpx-demo.XXXXXX)
pid=
wpid=
opid=
cleanup() {
    [ -n "$opid" ] && kill "$opid" 2>/dev/null && wait "$opid" 2>/dev/null || true
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "== A certificate for mx.demo.test, signed by a CA made for the demo:"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 2 -subj "/CN=demo CA" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" \
    2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=mx.demo.test" -keyout "$tmp/mx.key" -out "$tmp/mx.csr" \
    2>/dev/null
printf 'subjectAltName=DNS:mx.demo.test\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/mx.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
    -CAcreateserial -days 2 -extfile "$tmp/ext" -out "$tmp/mx.pem" 2>/dev/null
openssl x509 -in "$tmp/mx.pem" -noout -subject -issuer

echo
echo "== A user for AUTH (the file holds salted SCRAM keys, not the password):"
printf 'correct horse battery staple\n' >"$tmp/password"
"$RECV" --make-password plc7 <"$tmp/password" >"$tmp/users"
cat "$tmp/users"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo
echo "== smtpx-recv --listen 127.0.0.1:$port --tls-cert ... --auth-file ... --maildir $tmp/Maildir"
"$RECV" --listen "127.0.0.1:$port" --maildir "$tmp/Maildir" \
    --hostname mx.demo.test --tls-cert "$tmp/mx.pem" --tls-key "$tmp/mx.key" \
    --auth-file "$tmp/users" --require-tls 2>"$tmp/recv.log" &
pid=$!
i=0
until /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),1).recv(1)" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "demo: smtpx-recv did not start"; cat "$tmp/recv.log"; exit 1; }
    sleep 0.05
done

echo
echo "== smtpx-send delivers a message over STARTTLS with AUTH (-v shows the dialogue):"
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
    --starttls --ca "$tmp/ca.pem" --tls-name mx.demo.test \
    --user plc7 --password-file "$tmp/password" \
    -f plc7@plant.example -t -v <"$tmp/alarm.eml"
echo "(smtpx-send exit status $?: 0 means every recipient accepted)"

echo
echo "== smtpx-send builds a message with an attachment (the readings, as CSV):"
printf 'time,oven3_celsius\n14:00,248.5\n14:01,250.1\n14:02,251.0\n' \
    >"$tmp/oven3 readings.csv"
printf 'Readings of oven 3 attached.\n-- \nplc7\n' |
    "$SEND" --host 127.0.0.1 --port "$port" --helo plc7.plant.example \
        --starttls --ca "$tmp/ca.pem" --tls-name mx.demo.test \
        --user plc7 --password-file "$tmp/password" -f plc7@plant.example \
        --subject "Oven 3 readings — 14:00 to 14:02" \
        --attach "$tmp/oven3 readings.csv" ops@plant.example
echo "(smtpx-send exit status $?)"

echo
echo "== The receiver's log:"
kill -TERM "$pid"; wait "$pid" || true; pid=
cat "$tmp/recv.log"

echo
f=$(grep -l "Line 3 temperature alarm" "$tmp"/Maildir/new/*)
echo "== Stored in the Maildir as new/$(basename "$f") (durable before the 250):"
cat "$f"
grep -q "with ESMTPSA" "$f" || { echo "demo: not delivered over TLS with AUTH"; exit 1; }

echo
f=$(grep -l "MIME-Version" "$tmp"/Maildir/new/*)
echo "== The message with the attachment, new/$(basename "$f"): smtpx-mime headers"
"$MIME" headers "$f"
echo
echo "== smtpx-mime list (path, type, disposition, file name, size, SHA-256):"
"$MIME" list "$f"
mkdir "$tmp/extracted"
echo
echo "== smtpx-mime extract into $tmp/extracted:"
"$MIME" extract "$f" "$tmp/extracted"
echo
echo "== The extracted file:"
cat "$tmp/extracted/oven3 readings.csv"
cmp "$tmp/oven3 readings.csv" "$tmp/extracted/oven3 readings.csv" ||
    { echo "demo: the attachment changed on the way"; exit 1; }
echo "(identical to the file sent)"

echo
echo "== Exactly once between two systems: smtpx-warehouse takes orders, smtpx-orders sends them"
shop=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
depot=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_warehouse() {
    "$WAREHOUSE" --listen "127.0.0.1:$depot" --dir "$tmp/depot" \
        --address stock@depot.example --ack-via "127.0.0.1:$shop" \
        2>>"$tmp/warehouse.log" &
    wpid=$!
    i=0
    until /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$depot),1).recv(1)" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "demo: smtpx-warehouse did not start"; cat "$tmp/warehouse.log"; exit 1; }
        sleep 0.05
    done
}
orders() {
    "$ORDERS" --listen "127.0.0.1:$shop" --spool "$tmp/shop" \
        --from orders@shop.example --to stock@depot.example \
        --via "127.0.0.1:$depot" --ack-timeout 1 "$@"
}
printf 'sku,qty\r\nA-1,3\r\nB-7,1\r\n' >"$tmp/order-1001.csv"
printf '{"order": 1002, "sku": "C-5", "qty": 12}\n' >"$tmp/order-1002.json"
printf 'sku,qty\r\nD-9,2\r\n' >"$tmp/order-1003.csv"
start_warehouse
orders "$tmp/order-1001.csv" "$tmp/order-1002.json"
echo "(smtpx-orders exit status $?: 0 means every order was acknowledged)"
echo
echo "== The warehouse is killed (SIGKILL); order 1003 is sent while it is down,"
echo "== and the warehouse comes back 2 s later:"
kill -KILL "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=
orders "$tmp/order-1003.csv" &
opid=$!
sleep 2
echo "(the warehouse starts again)"
start_warehouse
wait "$opid"
opid=
echo "(smtpx-orders exit status $?)"
echo
echo "== The warehouse's ledger: each order once, keyed by its Message-ID:"
cat "$tmp/depot/orders"
[ "$(grep -c '^order ' "$tmp/depot/orders")" = 3 ] ||
    { echo "demo: the ledger does not hold the three orders once each"; exit 1; }
echo "== demo: ok"
