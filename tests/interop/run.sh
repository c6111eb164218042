#!/bin/sh
# run.sh - interop tests with real peers: clients (Python smtplib, swaks,
# curl, openssl s_client) against smtpx-recv, and smtpx-send against
# servers (smtp-sink, aiosmtpd, a private Postfix, smtpx-recv), in clear
# text and with TLS and AUTH; HAProxy in front of smtpx-recv (PROXY
# protocol); the receivers on libuv and libevent.  Usage: run.sh BUILD_DIR
set -eu
B=${1:-build}
/usr/bin/python3 "$(dirname "$0")/test_recv.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_send.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_tls.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_proxy.py" "$B"
exec /usr/bin/python3 "$(dirname "$0")/test_adapters.py" "$B"
