#!/bin/sh
# run.sh - interop tests with real peers:
# - clients (Python smtplib, swaks, curl, openssl s_client) against
#   smtpx-recv, in clear text and with TLS and AUTH;
# - smtpx-recv receiving each message once and acknowledging it (MDN and
#   DSN read by Python's email package, through aiosmtpd);
# - smtpx-send against servers (smtp-sink, aiosmtpd, a private Postfix,
#   smtpx-recv);
# - the message layer against Python's email package, mutt and mpack;
# - smtpx-orders and smtpx-warehouse exchanging orders exactly once (the
#   warehouse killed while they flow);
# - smtpx-recv under faults (SIGKILL under load, a full disk) and under
#   attack (slowloris, idle floods, clients that never read, 10,000
#   recipients, AUTH guessing);
# - smtpx-relay between real peers (deferrals, bounces read by Python's
#   email package, DSN, restarts, local delivery, a full tmpfs), killed
#   at random under load (the crash test), awaiting acknowledgements
#   (MDNs from an aiosmtpd peer, a private Postfix's bounces and success
#   reports; resends, giving up, restarts);
# - smtpx-relay --await-ack and smtpx-recv --dedupe --ack exchanging
#   messages exactly once while both are killed and acknowledgements are
#   lost;
# - routing by MX against dnsmasq in a network namespace of its own;
#   HAProxy in front of smtpx-recv (PROXY protocol); the receivers on
#   libuv and libevent.
# Usage: run.sh BUILD_DIR
set -eu
B=${1:-build}
/usr/bin/python3 "$(dirname "$0")/test_recv.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_ack_recv.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_send.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_msg.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_gallery.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_orders.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_faults.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_attacks.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_relay.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_relay_crash.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_relay_ack.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_ack_faults.py" "$B"
"$(dirname "$0")/netns.sh" /usr/bin/python3 "$(dirname "$0")/test_mx.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_tls.py" "$B"
/usr/bin/python3 "$(dirname "$0")/test_proxy.py" "$B"
exec /usr/bin/python3 "$(dirname "$0")/test_adapters.py" "$B"
