#!/bin/sh
# run.sh - interop tests with real peers: clients (Python smtplib, swaks,
# curl) against smtpx-recv, and smtpx-send against servers (smtp-sink,
# aiosmtpd, a private Postfix, smtpx-recv).  Usage: run.sh BUILD_DIR
set -eu
B=${1:-build}
/usr/bin/python3 "$(dirname "$0")/test_recv.py" "$B"
exec /usr/bin/python3 "$(dirname "$0")/test_send.py" "$B"
