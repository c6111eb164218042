#!/bin/sh
# symbols-test.sh - the shared library exports the public smtpx_ API and
# nothing else, under the soname libsmtpx.so.<C-A>.
set -eu
so=${1:?usage: symbols-test.sh LIBRARY}
bad=$(nm -D --defined-only "$so" | awk '{sub(/@.*/, "", $3); print $3}' | grep -v -e '^smtpx_[^_]' -e '^LIBSMTPX_' || true)
if [ -n "$bad" ]; then
    echo "symbols-test: unexpected exports:"; echo "$bad"; exit 1
fi
n=$(nm -D --defined-only "$so" | awk '{sub(/@.*/, "", $3); print $3}' | grep -c '^smtpx_')
[ "$n" -gt 20 ] || { echo "symbols-test: only $n smtpx_ symbols exported"; exit 1; }
# Every exported function is declared in a public header.
for sym in $(nm -D --defined-only "$so" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}'); do
    grep -q "\\b$sym(" include/libsmtpx/*.h || { echo "symbols-test: $sym is not in a public header"; exit 1; }
done
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
case "$soname" in
libsmtpx.so.[0-9]*) ;;
*) echo "symbols-test: bad soname '$soname'"; exit 1 ;;
esac
echo "symbols-test: ok ($n symbols, soname $soname)"
