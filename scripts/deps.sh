#!/bin/sh
# deps.sh - install the Debian packages a make target needs (as root), or
# say exactly which are missing (otherwise).
#
# Usage: scripts/deps.sh check|demo|bench|scale
#   check  build, unit tests, interop with real clients (smtplib, swaks, curl,
#          openssl s_client) and servers (aiosmtpd, Postfix smtpd with TLS
#          and Cyrus SASL), HAProxy in front of smtpx-recv (PROXY
#          protocol), and the receivers on libuv and libevent
#   demo   build and the end-to-end demo (openssl makes its certificate)
#   bench  benchmarks against Postfix's smtp-source / smtp-sink
#   scale  the scale benchmarks (make bench-scale): those, Node's
#          smtp-server (npm installs it under the build directory),
#          callgrind, and Postfix delivering into a Maildir
set -eu

base="gcc make pkg-config libc6-dev libmbedtls-dev"
case "${1:-}" in
check) pkgs="$base check libsubunit-dev python3 python3-aiosmtpd postfix swaks libnet-ssleay-perl curl openssl mandoc procps sasl2-bin libsasl2-modules haproxy libuv1-dev libevent-dev" ;;
demo) pkgs="$base python3 openssl" ;;
bench) pkgs="$base postfix python3 python3-aiosmtpd procps curl iproute2 iptables libnetfilter-queue-dev" ;;
scale) pkgs="$base postfix python3 python3-aiosmtpd procps nodejs valgrind openssl" ;;
*) echo "usage: $0 check|demo|bench|scale" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system; make sure these (or their equivalents) are installed: $pkgs" >&2
    exit 0
fi

missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: install them with: sudo apt-get install$missing" >&2
    exit 1
fi
echo "deps: installing$missing"
# Postfix comes only for its smtp-source/smtp-sink tools: no mail system is
# configured and nothing is left listening on port 25.
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
