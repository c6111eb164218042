#!/bin/sh
# run.sh - interop tests with real peers: clients (Python smtplib, swaks,
# curl, openssl s_client) against smtpx-recv, and smtpx-send against
# servers (smtp-sink, aiosmtpd, a private Postfix, smtpx-recv), in clear
# text and with TLS and AUTH; smtpx-relay between them (deferrals,
# bounces read by Python's email package, DSN, restarts, local delivery,
# a full tmpfs) and killed at random under load (the crash test).
# Usage: run.sh BUILD_DIR
set -eu
B=${1:-build}
/usr/bin/python3 "$(dirname "$0")/test_recv.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_send.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_relay.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_relay_crash.py" "$B"
exec /usr/bin/python3 "$(dirname "$0")/test_tls.py" "$B"
