#!/usr/bin/env python3
"""layering-test.py - keep the layers of lib/ pointing down.

    tests/layering-test.py [ROOT]        check the tree at ROOT (default .)
    tests/layering-test.py --self-test   show that each rule catches a
                                         violation planted in a copy

The rules (DESIGN.md, "Layers"):

  - lib/ has one folder per layer; every internal include names its folder
    ("proto/server.h"), so no internal header can shadow a public one.
  - A folder includes only from itself and the folders below it:
        base  <- proto <- io <- mta,    msg <- base only
    io (the drivers: transport, sockets, the loop, the TLS adapter) uses
    the cores through the public headers alone, as a user's own driver
    must: it may not include proto/.
  - The sans-IO core (base, proto) includes no socket, clock, thread,
    file-descriptor or polling header; msg none either, but the clock.
  - mbedTLS headers appear only in base/crypto.c (hashes, base64, random)
    and io/tls_mbedtls.c (the TLS adapter).
  - Public headers include only public headers and the C library.
  - examples/ and bench/ include only <libsmtpx/...> and system headers.

Each violation is printed as FILE:LINE: what, and the exit status is 1.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

LAYERS = {
    "base": {"base"},
    "proto": {"base", "proto"},
    "io": {"base", "io"},
    "msg": {"base", "msg"},
    "mta": {"base", "proto", "io", "msg", "mta"},
}
# System headers that a sans-IO layer must not include (sockets, clocks,
# threads, descriptors, polling).
IO_HEADERS = re.compile(
    r"^(sys/socket|sys/un|sys/select|sys/epoll|sys/event|sys/time|"
    r"sys/stat|sys/types|sys/uio|netinet/.*|arpa/.*|netdb|poll|time|"
    r"pthread|threads|unistd|fcntl|signal|dirent)\.h$")
CLOCK_HEADERS = re.compile(r"^(time|sys/time)\.h$")
NO_IO = {"base": IO_HEADERS, "proto": IO_HEADERS, "msg": IO_HEADERS}
MBEDTLS_OK = {"lib/base/crypto.c", "lib/io/tls_mbedtls.c"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1), m.group(2)


def sources(root, top):
    for d, _, files in sorted(os.walk(os.path.join(root, top))):
        for name in sorted(files):
            if name.endswith((".c", ".h")):
                path = os.path.join(d, name)
                yield path, os.path.relpath(path, root)


def check(root):
    bad = []

    def fail(rel, n, what):
        bad.append("%s:%d: %s" % (rel, n, what))

    for path, rel in sources(root, "lib"):
        parts = rel.split(os.sep)
        if len(parts) != 3:
            fail(rel, 1, "source outside a layer folder (lib/LAYER/file)")
            continue
        layer = parts[1]
        if layer not in LAYERS:
            fail(rel, 1, "unknown layer folder '%s'" % layer)
            continue
        for n, kind, name in includes(path):
            if kind == '"':
                dep = name.split("/")[0] if "/" in name else None
                if dep is None:
                    fail(rel, n, '"%s" does not name its folder' % name)
                elif dep not in LAYERS:
                    fail(rel, n, '"%s": no such layer' % name)
                elif dep not in LAYERS[layer]:
                    fail(rel, n, '%s may not include "%s" (%s is not '
                         'below %s)' % (layer, name, dep, layer))
                continue
            if name.startswith(("mbedtls/", "psa/")):
                if rel not in MBEDTLS_OK:
                    fail(rel, n, "<%s>: mbedTLS only in %s" %
                         (name, " and ".join(sorted(MBEDTLS_OK))))
                continue
            rule = NO_IO.get(layer)
            if rule is not None and rule.match(name):
                if layer == "msg" and CLOCK_HEADERS.match(name):
                    continue
                fail(rel, n, "<%s>: the %s layer does no I/O and reads no "
                     "clock" % (name, layer))

    for path, rel in sources(root, "include"):
        for n, kind, name in includes(path):
            if kind == '"' or name.startswith(("mbedtls/", "psa/")) and \
                    not rel.endswith("tls_mbedtls.h"):
                fail(rel, n, "public header includes %s" % name)

    for top in ("examples", "bench"):
        for path, rel in sources(root, top):
            for n, kind, name in includes(path):
                if kind == '"':
                    fail(rel, n, '"%s": %s use only <libsmtpx/...>' %
                         (name, top))
    return bad


def self_test(root):
    """Plant one violation per rule in a copy and expect each reported at
    its file and line; the clean copy must pass."""
    plants = [
        ("lib/proto/addr.c", '#include "io/posix.h"',
         "proto may not include \"io/posix.h\""),
        ("lib/io/posix.c", '#include "proto/server.h"',
         "io may not include \"proto/server.h\""),
        ("lib/base/buf.c", '#include "proto/cmd.h"',
         "base may not include \"proto/cmd.h\""),
        ("lib/proto/cmd.c", '#include "conf.h"',
         "\"conf.h\" does not name its folder"),
        ("lib/proto/reply.c", "#include <sys/socket.h>",
         "<sys/socket.h>: the proto layer does no I/O"),
        ("lib/proto/server.c", "#include <time.h>",
         "<time.h>: the proto layer does no I/O"),
        ("lib/proto/client.c", "#include <pthread.h>",
         "<pthread.h>: the proto layer"),
        ("lib/proto/data.c", "#include <mbedtls/ssl.h>",
         "<mbedtls/ssl.h>: mbedTLS only in"),
        ("include/libsmtpx/server.h", '#include "proto/server.h"',
         "public header includes proto/server.h"),
        ("examples/smtpx-recv.c", '#include "proto/server.h"',
         "examples use only <libsmtpx/...>"),
    ]
    me = os.path.abspath(__file__)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="smtpx-layering-") as tmp:
        for top in ("lib", "include", "examples", "bench"):
            src = os.path.join(root, top)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(tmp, top))
        clean = subprocess.run([sys.executable, me, tmp],
                               capture_output=True, text=True)
        if clean.returncode != 0:
            print("self-test: the clean copy fails:\n" + clean.stdout)
            return 1
        for rel, line, expect in plants:
            path = os.path.join(tmp, rel)
            with open(path) as f:
                text = f.read()
            # After the file's first line, so the reported line is known.
            first, rest = text.split("\n", 1)
            with open(path, "w") as f:
                f.write(first + "\n" + line + "\n" + rest)
            r = subprocess.run([sys.executable, me, tmp],
                               capture_output=True, text=True)
            with open(path, "w") as f:
                f.write(text)
            want = "%s:2: " % rel
            hit = [l for l in r.stdout.splitlines()
                   if l.startswith(want) and expect in l]
            if r.returncode != 1 or not hit:
                print("self-test: %s with %s: not caught (rc %d)\n%s" %
                      (rel, line, r.returncode, r.stdout))
                failures += 1
    if failures:
        return 1
    print("layering-test: self-test ok (%d planted violations caught)" %
          len(plants))
    return 0


def main():
    args = sys.argv[1:]
    if args and args[0] == "--self-test":
        root = args[1] if len(args) > 1 else "."
        return self_test(root)
    root = args[0] if args else "."
    bad = check(root)
    for b in bad:
        print(b)
    if bad:
        print("layering-test: %d violation(s)" % len(bad))
        return 1
    nfiles = sum(1 for _ in sources(root, "lib"))
    print("layering-test: ok (%d files in lib/)" % nfiles)
    return 0


if __name__ == "__main__":
    sys.exit(main())
