#!/bin/sh
# run.sh - interop tests against real clients (Debian's python3, swaks,
# curl).  Usage: tests/interop/run.sh BUILD_DIR
set -eu
B=${1:-build}
exec /usr/bin/python3 "$(dirname "$0")/test_recv.py" "$B"
