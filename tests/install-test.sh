#!/bin/sh
# install-test.sh - install into a scratch DESTDIR and build a program
# against the installed library through pkg-config, linked both ways.
set -eu
B=${1:-build}
top=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

make -s install DESTDIR="$tmp/root" PREFIX=/usr/local >/dev/null
export PKG_CONFIG_PATH="$tmp/root/usr/local/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
pkg-config --exists libsmtpx || { echo "install-test: libsmtpx.pc not found"; exit 1; }

cat >"$tmp/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <libsmtpx/smtpx.h>

int main(void)
{
    smtpx_config *cfg;
    smtpx_server *s;
    const uint8_t *out;
    size_t n;

    if (smtpx_version_num() != SMTPX_VERSION_NUM)
        return 1;
    if (smtpx_config_new(&cfg, SMTPX_ROLE_SERVER, NULL) != 0 ||
        smtpx_config_set_hostname(cfg, "installed.test") != 0 ||
        smtpx_config_freeze(cfg) != 0 ||
        smtpx_server_new(&s, cfg, NULL, 0, NULL) != 0 ||
        smtpx_server_start(s, NULL, 0) != 0)
        return 2;
    n = smtpx_server_out_peek(s, &out);
    printf("%.*s", (int)n, (const char *)out);
    smtpx_server_free(s);
    smtpx_config_free(cfg);
    return 0;
}
C
cflags=$(pkg-config --cflags libsmtpx)
libs=$(pkg-config --libs libsmtpx)
slibs=$(pkg-config --static --libs-only-l libsmtpx | sed 's/-lsmtpx//')
libdir="$tmp/root/usr/local/lib"
${CC:-cc} -std=c99 -Wall -Werror $cflags -o "$tmp/prog-shared" "$tmp/prog.c" $libs
${CC:-cc} -std=c99 -Wall -Werror $cflags -o "$tmp/prog-static" "$tmp/prog.c" "$libdir/libsmtpx.a" $slibs
got=$(LD_LIBRARY_PATH="$libdir" "$tmp/prog-shared")
[ "$got" = "$(printf '220 installed.test ESMTP\r')" ] || { echo "install-test: shared: got '$got'"; exit 1; }
got=$("$tmp/prog-static")
[ "$got" = "$(printf '220 installed.test ESMTP\r')" ] || { echo "install-test: static: got '$got'"; exit 1; }
# The program really uses the installed shared library.
LD_LIBRARY_PATH="$libdir" ldd "$tmp/prog-shared" | grep -q "$libdir/libsmtpx.so.0" ||
    { echo "install-test: not linked to the installed libsmtpx.so.0"; exit 1; }
for f in include/libsmtpx/smtpx.h lib/libsmtpx.so.0 lib/libsmtpx.a lib/pkgconfig/libsmtpx.pc; do
    [ -e "$tmp/root/usr/local/$f" ] || { echo "install-test: $f not installed"; exit 1; }
done
for m in man/*.[1-8]; do
    [ -e "$m" ] || continue
    sec=${m##*.}
    [ -e "$tmp/root/usr/local/share/man/man$sec/$(basename "$m")" ] ||
        { echo "install-test: $m not installed"; exit 1; }
done
# Every function has its own name in man3 (a link page to its family's).
for n in smtpx_config_free smtpx_server_out_peek smtpx_loop_stop; do
    [ -e "$tmp/root/usr/local/share/man/man3/$n.3" ] ||
        { echo "install-test: no man page for $n"; exit 1; }
done
MANPATH="$tmp/root/usr/local/share/man" man -w smtpx_config_free >/dev/null 2>&1 ||
    [ ! -x /usr/bin/man ] || { echo "install-test: man cannot find smtpx_config_free"; exit 1; }
# A plain make, then an install into a real prefix other than the default:
# the installed .pc names that prefix (it was once written at "make" time
# with /usr/local), and a program builds against it with pkg-config alone.
make -s install PREFIX="$tmp/prefix" >/dev/null
unset PKG_CONFIG_SYSROOT_DIR
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
[ "$(pkg-config --variable=prefix libsmtpx)" = "$tmp/prefix" ] ||
    { echo "install-test: libsmtpx.pc says $(pkg-config --variable=prefix libsmtpx), not $tmp/prefix"; exit 1; }
${CC:-cc} -std=c99 -Wall -Werror $(pkg-config --cflags libsmtpx) -o "$tmp/prog-prefix" \
    "$tmp/prog.c" $(pkg-config --libs libsmtpx)
got=$(LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/prog-prefix")
[ "$got" = "$(printf '220 installed.test ESMTP\r')" ] || { echo "install-test: prefix: got '$got'"; exit 1; }
echo "install-test: ok (headers, shared + static library, pkg-config, man pages, PREFIX=$tmp/prefix)"
