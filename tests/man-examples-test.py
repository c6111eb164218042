#!/usr/bin/env python3
"""man-examples-test.py - the C examples of the man pages are complete
programs or translation units that compile without a warning and link.

    tests/man-examples-test.py [options] PAGE...
    tests/man-examples-test.py --self-test [options]
    tests/man-examples-test.py --format PAGE...

Options: --cc CC (default $CC, else cc), --lib LIBSMTPX_A (the static
library to link with, default build/libsmtpx.a), --libs "LIBS" (what it
needs: the Makefile's LIB_LIBS), --ldflags "FLAGS".

Which blocks are C.  Every literal display (.Bd -literal or -unfilled) of
the EXAMPLES section of a page, of any section, is C, except:

  - a shell session: its first line begins with the prompt "$ " or "# ";
  - a block whose .Bd line comes right after the comment line
        .\\" not C: what it is
    (a sample of output, a configuration file, shell commands shown
    without a prompt).

A block taken as not C that has a line ending in ";" or "{", or an
#include or #define line, fails: C cannot be hidden from the check.  A
roff request (a line beginning with "." or "'") inside a C block fails,
since the reader would not see that line: write "\\&." instead.  Escapes
are decoded strictly (\\e, \\&, \\-, \\(aq, \\(dq, \\(ti, \\(ha, \\(ga,
\\(rs and \\" comments); any other fails.  The decoded text of each line
must be what mandoc shows (when mandoc is installed).

How a page is compiled.  A C block whose first line is an #include starts
a unit; a C block that does not (the text says it adds to the code above)
continues the unit before it, and the first C block of a page must start
one.  Each unit is compiled on its own, as a user copies it, and all the
C blocks of the page are concatenated in order into one translation unit
and compiled too, so the blocks must fit together.  Only <libsmtpx/...>
and system headers may be included, and only the tree's include/ is on
the include path.  The flags are the library's warnings (the Makefile's
WARN, but -Wmissing-prototypes: an example's functions are the entry
points an application calls from its other files) with -Werror:

    -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -pthread -Wall -Wextra
    -Wshadow -Wconversion ... -Werror

A translation unit that defines main() is linked with the static library
and LIBS, so an undefined symbol fails.  One that does not is checked
with nm: every smtpx_ function or object it uses must be defined by the
library, and internal smtpx__ symbols may not be used at all.

--self-test plants one fault of each kind in a small page of its own and
shows that the check fails for it, and passes for the page unbroken.

--format shows, for each C block, what clang-format would change (the
tree's .clang-format, with the column limit that keeps a line within 78
columns once mandoc indents the display); it is run by make format-check.
"""
import argparse
import concurrent.futures
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ME = "man-examples-test"

CFLAGS = ["-std=c99", "-D_POSIX_C_SOURCE=200809L", "-O2", "-pthread",
          "-Wall", "-Wextra", "-Wshadow", "-Wconversion",
          "-Wstrict-prototypes", "-Wpointer-arith", "-Wformat=2", "-Wundef",
          "-Wvla", "-Wwrite-strings", "-Wold-style-definition",
          "-Wimplicit-fallthrough", "-Wcast-align", "-Wnull-dereference",
          "-Werror"]

# The escapes a C example may use, and what the reader sees.
ESCAPES = {"e": "\\", "&": "", "-": "-", "(aq": "'", "(dq": '"',
           "(ti": "~", "(ha": "^", "(ga": "`", "(rs": "\\"}
PROMPT = re.compile(r"^(\$|#) ")
MARKER = re.compile(r'^\.\\"\s*not C:\s*\S')
LOOKS_C = re.compile(r"^\s*#\s*(include|define)\b|[;{]\s*$")
INCLUDE = re.compile(r"^\s*#\s*include\s*(\S+)")
INCLUDE_OK = re.compile(r"^<(libsmtpx/[a-z_]+\.h|(sys/|netinet/|arpa/)?"
                        r"[a-z0-9_]+\.h)>$")
# Display margins of mandoc's terminal output: the page's indentation,
# and "-offset indent" on top of it.
MARGIN, OFFSET_INDENT, WIDTH = 5, 6, 78


class Block:
    def __init__(self, page, line, bd):
        self.page, self.line, self.bd = page, line, bd
        self.raw = []        # the source lines after .Bd
        self.code = []       # decoded, one per source line
        self.marker = False  # ".\" not C:" right before .Bd
        self.errors = []

    def first(self):
        for s in self.code:
            if s.strip():
                return s
        return ""

    def is_c(self):
        return not (self.marker or PROMPT.match(self.first()))

    def starts_unit(self):
        return self.first().lstrip().startswith("#include")


def decode(text):
    """The line as the reader sees it, or raise ValueError."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == '"':
            break
        name = text[i + 1:i + 4] if nxt == "(" else nxt
        if name not in ESCAPES:
            raise ValueError("escape \\%s is not allowed in an example"
                             % name)
        out.append(ESCAPES[name])
        i += 1 + len(name)
    return "".join(out).rstrip()


def parse(page):
    """The literal displays of the EXAMPLES section of page."""
    blocks, cur, in_ex, prev = [], None, False, ""
    with open(page, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        if cur is not None:
            if line.startswith(".Ed"):
                blocks.append(cur)
                cur = None
            else:
                cur.raw.append(line)
        elif line.startswith(".Sh "):
            in_ex = line.split(None, 1)[1].strip() == "EXAMPLES"
        elif in_ex and line.startswith(".Bd") and \
                re.search(r"-(literal|unfilled)\b", line):
            cur = Block(page, n, line)
            cur.marker = MARKER.match(prev) is not None
        prev = line
    for b in blocks:
        for k, line in enumerate(b.raw):
            where = "%s:%d" % (page, b.line + 1 + k)
            if line.startswith('.\\"') or line.startswith("'\\\""):
                b.code.append("")
                continue
            if line.startswith(".") or line.startswith("'"):
                b.errors.append("%s: a roff request inside an example; "
                                "write \\&%s" % (where, line[0]))
                b.code.append("")
                continue
            try:
                b.code.append(decode(line))
            except ValueError as e:
                b.errors.append("%s: %s" % (where, e))
                b.code.append("")
    return blocks


def rendered(page):
    """The lines mandoc shows, white space squeezed; None without mandoc."""
    if shutil.which("mandoc") is None:
        return None
    r = subprocess.run(["mandoc", "-Tascii", page], capture_output=True,
                       text=True)
    text = re.sub(r".\x08", "", r.stdout)
    return {" ".join(s.split()) for s in text.split("\n")}


def check_blocks(page, blocks, shown):
    """Errors of classification, escapes and includes."""
    errors = []
    cblocks = [b for b in blocks if b.is_c()]
    for b in blocks:
        errors += b.errors
        if not b.is_c():
            for k, s in enumerate(b.code):
                if LOOKS_C.search(s):
                    errors.append(
                        "%s:%d: this block is taken as not C (%s) but this "
                        "line looks like C" % (
                            page, b.line + 1 + k,
                            "marked" if b.marker else "a shell prompt"))
                    break
            continue
        for k, s in enumerate(b.code):
            where = "%s:%d" % (page, b.line + 1 + k)
            m = INCLUDE.match(s)
            if m and not INCLUDE_OK.match(m.group(1)):
                errors.append("%s: %s: an example includes <libsmtpx/...> "
                              "and system headers only" % (where, m.group(1)))
            if shown is not None and s.strip() and \
                    " ".join(s.split()) not in shown:
                errors.append("%s: mandoc does not show this line as the "
                              "check reads it: %r" % (where, s))
    if cblocks and not cblocks[0].starts_unit():
        errors.append("%s:%d: the first C example of a page must begin with "
                      "its #include lines (to mark a block as not C, see "
                      "the top of %s)" % (page, cblocks[0].line, sys.argv[0]))
    return errors


def source(blocks):
    """Blocks as one C file, with #line so that errors name the page."""
    out = []
    for b in blocks:
        out.append('#line %d "%s"' % (b.line + 1, b.page))
        out.extend(b.code)
    return "\n".join(out) + "\n"


def units(blocks):
    """The C blocks grouped: each #include block with those that follow."""
    groups = []
    for b in blocks:
        if not b.is_c():
            continue
        if b.starts_unit() or not groups:
            groups.append([])
        groups[-1].append(b)
    return groups


LIBRARY_SYMBOLS = {}


class Builder:
    def __init__(self, args, tmp):
        self.cc = shlex.split(args.cc)
        self.lib = args.lib
        self.libs = shlex.split(args.libs)
        self.ldflags = shlex.split(args.ldflags)
        self.tmp = tmp

    def library_symbols(self):
        if self.lib not in LIBRARY_SYMBOLS:
            r = subprocess.run(["nm", "-g", "-P", "--defined-only", self.lib],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit("%s: nm %s: %s" % (ME, self.lib, r.stderr))
            LIBRARY_SYMBOLS[self.lib] = {
                ln.split()[0] for ln in r.stdout.splitlines()
                if len(ln.split()) >= 2 and ln.split()[1] in "TDBR"}
        return LIBRARY_SYMBOLS[self.lib]

    def build(self, k, what, text):
        """Compile text; link it if it has main(), else check its symbols.
        Returns (linked, error or None)."""
        base = os.path.join(self.tmp, "ex%d" % k)
        with open(base + ".c", "w", encoding="utf-8") as f:
            f.write(text)
        r = subprocess.run(self.cc + CFLAGS + ["-I", os.path.join(
            ROOT, "include"), "-c", base + ".c", "-o", base + ".o"],
            capture_output=True, text=True)
        if r.returncode != 0:
            return False, "%s: does not compile cleanly:\n%s" % (
                what, r.stderr)
        r = subprocess.run(["nm", "-g", "-P", base + ".o"],
                           capture_output=True, text=True)
        syms = [ln.split()[:2] for ln in r.stdout.splitlines()
                if len(ln.split()) >= 2]
        internal = sorted(s for s, t in syms if s.startswith("smtpx__"))
        if internal:
            return False, "%s: uses internal symbols: %s" % (
                what, " ".join(internal))
        if any(s == "main" and t == "T" for s, t in syms):
            r = subprocess.run(self.cc + ["-pthread"] + self.ldflags +
                               ["-o", base, base + ".o", self.lib] +
                               self.libs, capture_output=True, text=True)
            if r.returncode != 0:
                return False, "%s: does not link:\n%s" % (what, r.stderr)
            return True, None
        missing = sorted(s for s, t in syms if t == "U" and
                         s.startswith("smtpx_") and
                         s not in self.library_symbols())
        if missing:
            return False, "%s: the library does not define %s" % (
                what, " ".join(missing))
        return False, None


def run(args, pages):
    """Check pages; print what fails; return (failures, summary)."""
    if not os.path.exists(args.lib):
        raise SystemExit("%s: %s is missing: build the library first "
                         "(make lib)" % (ME, args.lib))
    jobs, errors, stats = [], [], {"c": 0, "text": 0, "pages": 0}
    for page in pages:
        blocks = parse(page)
        shown = rendered(page) if any(b.is_c() for b in blocks) else None
        errors += check_blocks(page, blocks, shown)
        groups = units(blocks)
        stats["c"] += sum(len(g) for g in groups)
        stats["text"] += sum(1 for b in blocks if not b.is_c())
        if not groups:
            continue
        stats["pages"] += 1
        every = [b for g in groups for b in g]
        jobs.append(("%s: its examples together" % page, source(every)))
        if len(groups) > 1:
            for g in groups:
                jobs.append(("%s:%d: the example that begins here, alone" %
                             (page, g[0].line), source(g)))
    if shutil.which("mandoc") is None:
        print("%s: mandoc is not installed: the text is not compared with "
              "what mandoc shows" % ME)
    with tempfile.TemporaryDirectory(prefix="smtpx-manex-") as tmp:
        b = Builder(args, tmp)
        b.library_symbols()
        with concurrent.futures.ThreadPoolExecutor(2 * (os.cpu_count() or 2)) as ex:
            results = list(ex.map(lambda kj: b.build(kj[0], *kj[1]),
                                  enumerate(jobs)))
    errors += [e for _, e in results if e is not None]
    linked = sum(1 for ok, _ in results if ok)
    summary = ("%d pages with C examples: %d C blocks, %d translation units "
               "compiled, %d programs linked; %d blocks of shell or text" %
               (stats["pages"], stats["c"], len(jobs), linked, stats["text"]))
    return errors, summary


GOOD = r""".Dd March 1, 2026
.Dt SELFTEST 3
.Os
.Sh NAME
.Nm selftest
.Nd a page for the self-test
.Sh DESCRIPTION
Nothing.
.Sh EXAMPLES
.Bd -literal
#include <stdio.h>

#include <libsmtpx/smtpx.h>

int main(void)
{
    printf("%s\en", smtpx_strerror(SMTPX_ERR_NOMEM));
    return 0;
}
.Ed
.Pp
.Bd -literal
$ ./a.out
out of memory
.Ed
.Pp
A function of its own:
.Bd -literal
#include <libsmtpx/smtpx.h>

const char *name(int err)
{
    return smtpx_err_name(err);
}
.Ed
.Pp
And one that uses it:
.Bd -literal
int is_nomem(int err)
{
    return name(err)[10] == 'N';
}
.Ed
.\" not C: output
.Bd -literal
Return-Path: <alice@example.org>
.Ed
"""

# Each fault: what it is, the text replaced, what replaces it, and what the
# check must say.
FAULTS = [
    ("an undeclared name", "SMTPX_ERR_NOMEM)", "SMTPX_ERR_NOMEN)",
     "does not compile"),
    ("a warning (an unused variable)", "{\n    printf",
     "{\n    int unused;\n\n    printf", "does not compile"),
    ("a missing #include", "#include <stdio.h>\n", "", "does not compile"),
    ("a function the library does not define, in a program",
     "int main(void)\n{\n",
     "int smtpx_no_such_function(void);\n\nint main(void)\n{\n"
     "    smtpx_no_such_function();\n", "does not link"),
    ("a function the library does not define, in a unit without main()",
     "    return smtpx_err_name(err);",
     "    int smtpx_no_such(int);\n\n    return smtpx_err_name("
     "smtpx_no_such(err));", "the library does not define smtpx_no_such"),
    ("an internal function", "    return smtpx_err_name(err);",
     "    void *smtpx__alloc(size_t);\n\n    return smtpx__alloc(1) ? "
     "smtpx_err_name(err) : \"\";", "uses internal symbols"),
    ("a fragment: statements outside a function",
     "int is_nomem(int err)\n{\n    return name(err)[10] == 'N';\n}\n",
     "const char *s = name(-501);\nputs(s);\n", "does not compile"),
    ("a page whose first C block has no #include",
     ".Sh EXAMPLES\n.Bd -literal\n#include <stdio.h>\n\n"
     "#include <libsmtpx/smtpx.h>\n", ".Sh EXAMPLES\n.Bd -literal\n",
     "must begin with its #include"),
    ("C marked as not C", ".Bd -literal\nint is_nomem",
     '.\\" not C: a function\n.Bd -literal\nint is_nomem', "looks like C"),
    ("C behind a prompt", "$ ./a.out", "# include <stdio.h>",
     "looks like C"),
    ("a roff request in C", "    return 0;\n}", "    return 0;\n}\n.Pp",
     "roff request"),
    ("an escape the check does not know", 'printf("%s\\en"',
     'printf("%s\\fB\\en"', "escape \\f"),
    ("an internal header", "#include <libsmtpx/smtpx.h>",
     "#include <libsmtpx/smtpx.h>\n#include \"proto/server.h\"",
     "system headers only"),
    ("two blocks that do not fit together", "int is_nomem(",
     "int main(void)\n{\n    return 1;\n}\n\nint is_nomem(",
     "does not compile"),
    ("a unit that needs the one before it",
     "A function of its own:\n.Bd -literal\n#include <libsmtpx/smtpx.h>\n",
     "A function of its own:\n.Bd -literal\n#include <string.h>\n",
     "alone: does not compile"),
]


def self_test(args):
    status = 0
    with tempfile.TemporaryDirectory(prefix="smtpx-manex-self-") as tmp:
        def check(k, text):
            os.mkdir(os.path.join(tmp, str(k)))
            page = os.path.join(tmp, str(k), "selftest.3")
            with open(page, "w", encoding="utf-8") as f:
                f.write(text)
            return "\n".join(run(args, [page])[0])
        texts = [GOOD] + [GOOD.replace(old, new, 1)
                          for _, old, new, _ in FAULTS]
        with concurrent.futures.ThreadPoolExecutor(len(texts)) as ex:
            found = list(ex.map(check, range(len(texts)), texts))
    if found[0]:
        print("%s: self-test: the unbroken page fails:\n%s" % (ME, found[0]))
        status = 1
    for (what, old, _, expect), errs in zip(FAULTS, found[1:]):
        if old not in GOOD:
            print("%s: self-test: %s: the text to replace is not in the "
                  "page" % (ME, what))
            status = 1
        elif expect not in errs:
            print("%s: self-test: %s is not caught as it should be (%r)%s" %
                  (ME, what, expect, ":\n" + errs if errs else ""))
            status = 1
    if status == 0:
        print("%s: self-test ok (%d planted faults caught)" %
              (ME, len(FAULTS)))
    return status


def clang_style(limit):
    style = {}
    with open(os.path.join(ROOT, ".clang-format"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if ":" in line:
                k, v = line.split(":", 1)
                style[k.strip()] = v.strip()
    style["ColumnLimit"] = str(limit)
    return "{" + ", ".join("%s: %s" % kv for kv in style.items()) + "}"


def format_check(pages):
    if shutil.which("clang-format") is None:
        print("%s: clang-format is not installed" % ME)
        return 1
    status = 0
    for page in pages:
        for b in parse(page):
            if not b.is_c() or b.errors:
                continue
            margin = MARGIN + (OFFSET_INDENT if "-offset" in b.bd else 0)
            text = "\n".join(b.code) + "\n"
            r = subprocess.run(["clang-format", "--assume-filename=x.c",
                                "--style=" + clang_style(WIDTH - margin)],
                               input=text, capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr)
                return 1
            if r.stdout != text:
                status = 1
                sys.stdout.writelines(difflib.unified_diff(
                    text.splitlines(True), r.stdout.splitlines(True),
                    "%s:%d" % (page, b.line), "clang-format"))
    if status == 0:
        print("%s: format ok" % ME)
    return status


def main():
    p = argparse.ArgumentParser(description="Check the C examples of the "
                                "man pages.")
    p.add_argument("--cc", default=os.environ.get("CC", "cc"))
    p.add_argument("--lib", default=os.path.join("build", "libsmtpx.a"))
    p.add_argument("--libs", default="-lmbedtls -lmbedx509 -lmbedcrypto "
                   "-lresolv -pthread")
    p.add_argument("--ldflags", default="")
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--format", action="store_true")
    p.add_argument("pages", nargs="*")
    args = p.parse_args()
    if args.self_test:
        return self_test(args)
    if args.format:
        return format_check(args.pages)
    if not args.pages:
        p.error("no pages")
    errors, summary = run(args, args.pages)
    if errors:
        print("\n".join(errors))
        print("%s: FAILED (%d problems)" % (ME, len(errors)))
        return 1
    print("%s: ok (%s)" % (ME, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
