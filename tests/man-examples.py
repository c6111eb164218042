#!/usr/bin/env python3
"""man-examples.py - the examples of the man pages compile.

    tests/man-examples.py PAGE...

Every literal block (.Bd -literal ... .Ed) that begins with #include and
defines a function is a whole program or module: its mdoc escapes are
undone and it is compiled against include/ with the compiler in $CC (cc),
-std=c99 -Wall -Werror (a module's static functions may go unused
there).  Blocks that show a fragment (statements without
their function) are left out.  Exit status 1 and the compiler's words when
one does not compile.
"""
import os
import re
import subprocess
import sys
import tempfile

FUNC = re.compile(r"^[A-Za-z_][A-Za-z0-9_ \t*]*\(.*$", re.M)
ESCAPES = [("\\e", "\\"), ("\\&", ""), ("\\(aq", "'"), ("\\(dq", '"'),
           ("\\-", "-")]


def blocks(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith(".Bd -literal"):
            j = i + 1
            body = []
            while j < len(lines) and not lines[j].startswith(".Ed"):
                body.append(lines[j])
                j += 1
            yield i + 1, "\n".join(body)
            i = j
        i += 1


def whole(text):
    """A block with #include first and a function defined at column 0."""
    if not text.lstrip().startswith("#include"):
        return False
    return any(m.group(0).rstrip().endswith((")", ",")) or "(" in m.group(0)
               for m in FUNC.finditer(text)) and "\n{" in text


def main(pages):
    cc = os.environ.get("CC", "cc")
    n = bad = 0
    for page in pages:
        for line, text in blocks(page):
            if not whole(text):
                continue
            for a, b in ESCAPES:
                text = text.replace(a, b)
            n += 1
            with tempfile.NamedTemporaryFile("w", suffix=".c",
                                             delete=False) as f:
                f.write(text + "\n")
            try:
                r = subprocess.run(
                    [cc, "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall",
                     "-Werror", "-Wno-unused-function",
                     "-Wno-unused-const-variable", "-Iinclude", "-c", "-o",
                     os.devnull, f.name],
                    capture_output=True, text=True)
            finally:
                os.unlink(f.name)
            if r.returncode != 0:
                bad += 1
                print("%s:%d: the example does not compile:\n%s"
                      % (page, line, r.stderr.replace(f.name, "example.c")))
    print("man-examples: %d examples, %d do not compile" % (n, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
