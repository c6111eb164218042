#!/usr/bin/python3
"""idle.py HOST PORT N PID [tls] - open N connections, send EHLO on each
(with "tls": then STARTTLS, the TLS handshake and EHLO again), hold them
idle, and print the resident memory the server PID (and its children)
gained per connection, in KiB."""
import socket
import ssl
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


def read_reply(c):
    data = b""
    while not any(l[3:4] == b" " for l in data.split(b"\r\n") if len(l) > 3):
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def main():
    host, port, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    tls = len(sys.argv) > 5 and sys.argv[5] == "tls"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    before = rss_kb(pid)
    conns = []
    for _ in range(n):
        c = socket.create_connection((host, port), 10)
        c.settimeout(10)
        conns.append(c)
    for c in conns:
        c.recv(512)
        c.sendall(b"EHLO idle.example.test\r\n")
    for i, c in enumerate(conns):
        read_reply(c)
        if tls:
            c.sendall(b"STARTTLS\r\n")
            if not read_reply(c).startswith(b"220"):
                sys.exit("idle.py: STARTTLS refused")
            c = conns[i] = ctx.wrap_socket(c, server_hostname="mx.test")
            c.sendall(b"EHLO idle.example.test\r\n")
            read_reply(c)
    time.sleep(0.5)
    held = rss_kb(pid)
    for c in conns:
        c.close()
    print("%.2f" % ((held - before) / n))


if __name__ == "__main__":
    main()
