#!/bin/sh
# netns.sh CMD... - run CMD in a network namespace of its own, made here
# and removed afterwards: only a loopback interface (all of 127.0.0.0/8 is
# ours there) and /etc/resolv.conf pointing at 127.0.0.1, where the test
# starts its own DNS server.  Needs root and iproute2; says "skip" and
# exits 0 without them.
set -eu
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1; then
    echo "netns: skip (needs root and iproute2)"
    exit 0
fi
ns=smtpx-test-$$
ip netns add "$ns" || { echo "netns: skip (cannot make a namespace)"; exit 0; }
trap 'ip netns del "$ns"; rm -rf "/etc/netns/$ns"' EXIT INT TERM
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" "$@"
