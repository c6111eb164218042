#!/usr/bin/python3
"""msgbench.py - the work of msgbench with Python's email package: parse
each file, walk the parts, get_payload(decode=True).  Prints what msgbench
prints.

Usage: msgbench.py ROUNDS FILE...
"""
import email
import email.policy
import resource
import sys
import time


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def main():
    rounds = int(sys.argv[1])
    files = sys.argv[2:]
    base = rss_kib()
    best = 1e30
    for _ in range(rounds):
        t0 = time.monotonic()
        total = decoded = parts = 0
        for name in files:
            with open(name, "rb") as f:
                data = f.read()
            total += len(data)
            m = email.message_from_bytes(data, policy=email.policy.default)
            for part in m.walk():
                if part.is_multipart():
                    continue
                payload = part.get_payload(decode=True) or b""
                decoded += len(payload)
                parts += 1
        best = min(best, time.monotonic() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(total, "%.6f" % best, decoded, parts, base, peak)


main()
