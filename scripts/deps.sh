#!/bin/sh
# deps.sh - install the Debian packages a make target needs (as root), or
# say exactly which are missing (otherwise).
#
# Usage: scripts/deps.sh check|demo|bench|scale|fuzz|valgrind|coverage
# NO_INSTALL=1 (make NO_INSTALL=1 ...): never install, only name what is
# missing and fail.
#   check     build, unit tests, interop with real clients (smtplib, swaks,
#             curl, openssl s_client) and servers (aiosmtpd, Postfix smtpd
#             with TLS and Cyrus SASL); MIME messages written by mutt and
#             mpack; smtpx-relay's MX routing against dnsmasq in a
#             network namespace (iproute2); HAProxy in front of smtpx-recv
#             (PROXY protocol); the receivers on libuv and libevent
#   demo      build and the end-to-end demo (openssl makes its certificate)
#   bench     benchmarks against Postfix's smtp-source / smtp-sink, libESMTP,
#             and the MIME parser against GMime 3; strace counts syncs
#   scale     the scale benchmarks (make bench-scale): against smtp-sink,
#             aiosmtpd, Node's smtp-server (npm installs it under the build
#             directory) and Postfix delivering into a Maildir; callgrind
#   fuzz      clang and its libFuzzer runtime (make fuzz-run)
#   valgrind  the unit and interop tests under memcheck (make check-valgrind)
#   coverage  gcov line and branch coverage per module (make coverage)
set -eu

base="gcc make pkg-config libc6-dev libmbedtls-dev libc-ares-dev"
case "${1:-}" in
check) pkgs="$base check libsubunit-dev python3 python3-aiosmtpd postfix swaks libnet-ssleay-perl curl openssl mandoc procps sasl2-bin libsasl2-modules mutt mpack dnsmasq-base iproute2 haproxy libuv1-dev libevent-dev" ;;
demo) pkgs="$base python3 openssl" ;;
bench) pkgs="$base postfix python3 python3-aiosmtpd procps curl iproute2 iptables libnetfilter-queue-dev libgmime-3.0-dev libesmtp-dev strace" ;;
scale) pkgs="$base postfix python3 python3-aiosmtpd procps nodejs valgrind openssl" ;;
fuzz) pkgs="$base clang libclang-rt-14-dev" ;;
valgrind) pkgs="valgrind" ;;
coverage) pkgs="gcovr" ;;
*) echo "usage: $0 check|demo|bench|scale|fuzz|valgrind|coverage" >&2; exit 2 ;;
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

if [ "$(id -u)" != 0 ] || [ -n "${NO_INSTALL:-}" ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: install them with: sudo apt-get install$missing" >&2
    exit 1
fi
echo "deps: installing with apt-get (NO_INSTALL=1 to only list them):$missing"
# Postfix comes only for its smtp-source/smtp-sink tools: no mail system is
# configured and nothing is left listening on port 25.
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
