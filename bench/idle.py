#!/usr/bin/python3
"""idle.py HOST PORT N PID - open N connections, send EHLO on each, hold
them idle, and print the resident memory the server PID (and its children)
gained per connection, in KiB."""
import os
import socket
import sys
import time


def rss_kb(pid):
    total = 0
    pids = [pid]
    for p in pids:
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                pids += [int(x) for x in f.read().split()]
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def main():
    host, port, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    before = rss_kb(pid)
    conns = []
    for _ in range(n):
        c = socket.create_connection((host, port), 10)
        c.settimeout(10)
        conns.append(c)
    for c in conns:
        c.recv(512)
        c.sendall(b"EHLO idle.example.test\r\n")
    for c in conns:
        data = b""
        while not any(l[3:4] == b" " for l in data.split(b"\r\n") if len(l) > 3):
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    time.sleep(0.5)
    held = rss_kb(pid)
    for c in conns:
        c.close()
    print("%.2f" % ((held - before) / n))


if __name__ == "__main__":
    main()
