#!/bin/sh
# man-test.sh - every man page is valid mdoc, and every public function has
# a page that documents it.
set -eu
status=0
for m in "$@"; do
    out=$(mandoc -Tlint -W warning "$m" 2>&1 || true)
    if [ -n "$out" ]; then echo "$out"; status=1; fi
done
for sym in $(sed -n 's/^SMTPX_EXTERN[^(]*[ *]\(smtpx_[a-z0-9_]*\)(.*/\1/p' include/libsmtpx/*.h | sort -u); do
    grep -qs "^\.Fn $sym\b\|^\.Fo $sym\b\|^\.Nm $sym\b" man/*.3 ||
        { echo "man-test: $sym has no man page"; status=1; }
done
# The examples that are whole programs or modules compile.
tests/man-examples.py "$@" || status=1
[ $status = 0 ] && echo "man-test: ok ($# pages)"
exit $status
