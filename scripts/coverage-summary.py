#!/usr/bin/python3
"""coverage-summary.py - line and branch coverage per module (lib/ folder)
from gcovr's --json-summary output.  Usage: coverage-summary.py FILE"""
import json
import sys


def pct(a, b):
    return "%5.1f%%" % (100.0 * a / b) if b else "    -"


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    mods = {}
    for fe in data["files"]:
        parts = fe["filename"].split("/")
        mod = parts[1] if len(parts) > 2 and parts[0] == "lib" else parts[0]
        m = mods.setdefault(mod, [0, 0, 0, 0])
        m[0] += fe["line_covered"]
        m[1] += fe["line_total"]
        m[2] += fe["branch_covered"]
        m[3] += fe["branch_total"]
    print("%-8s %15s %17s" % ("module", "lines", "branches"))
    tot = [0, 0, 0, 0]
    for mod in sorted(mods):
        m = mods[mod]
        tot = [a + b for a, b in zip(tot, m)]
        print("%-8s %6s %4d/%-4d %6s %4d/%-5d" % (mod, pct(m[0], m[1]), m[0],
              m[1], pct(m[2], m[3]), m[2], m[3]))
    print("%-8s %6s %4d/%-4d %6s %4d/%-5d" % ("lib/", pct(tot[0], tot[1]),
          tot[0], tot[1], pct(tot[2], tot[3]), tot[2], tot[3]))


if __name__ == "__main__":
    main()
