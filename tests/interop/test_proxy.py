#!/usr/bin/python3
"""Interop: Debian's HAProxy in front of smtpx-recv, relaying with the PROXY
protocol, and hostile PROXY headers.

HAProxy listens on two loopback ports and relays to smtpx-recv's PROXY
listener, one with version 1 (send-proxy), one with version 2 and TLVs
(send-proxy-v2 with a unique id and a CRC32C); its health checks connect
with version 2 LOCAL headers.  Clients connect to HAProxy from 127.0.0.5
and 127.0.0.6 while HAProxy itself connects from 127.0.0.1, the one
trusted proxy: the messages must show the clients.  Then headers nobody
should believe: from an address that is not trusted, malformed, oversized,
with a wrong checksum, or none at all from the proxy.

Usage: test_proxy.py BUILD_DIR
"""
import os
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
RECV = os.path.join(BUILD, "examples", "smtpx-recv")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

MSG = b"Subject: relayed\r\n\r\nthrough a proxy\r\n"
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, dst, sport, dport, tlvs=b""):
    block = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack(">HH", sport, dport)
    return V2SIG + b"\x21\x11" + struct.pack(">H", len(block) + len(tlvs)) + \
        block + tlvs


def connect_from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def closed_silently(s):
    """The server closes without sending anything."""
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


class HAProxy:
    def __init__(self, dir, backend_port):
        self.v1 = peers.free_port()
        self.v2 = peers.free_port()
        cfg = os.path.join(dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(
                "global\n"
                "    maxconn 200\n"
                "defaults\n"
                "    mode tcp\n"
                "    timeout connect 5s\n"
                "    timeout client 30s\n"
                "    timeout server 30s\n"
                "    unique-id-format %%{+X}o\\ %%ci:%%cp_%%fi:%%fp_%%Ts_%%rt\n"
                "frontend v1\n"
                "    bind 127.0.0.1:%d\n"
                "    default_backend v1\n"
                "frontend v2\n"
                "    bind 127.0.0.1:%d\n"
                "    default_backend v2\n"
                "backend v1\n"
                "    server recv 127.0.0.1:%d send-proxy\n"
                "backend v2\n"
                "    server recv 127.0.0.1:%d send-proxy-v2 "
                "proxy-v2-options crc32c,unique-id check inter 200 "
                "check-send-proxy\n"
                % (self.v1, self.v2, backend_port, backend_port))
        self.log = open(os.path.join(dir, "haproxy.log"), "w+")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        peers.wait_port(self.v1, self.proc)
        peers.wait_port(self.v2, self.proc)

    def stop(self):
        peers.stop_process(self.proc)
        self.log.close()


class ProxyInterop(unittest.TestCase):
    def setUp(self):
        self.r = peers.Receiver(RECV, "mx.proxy.test", "--proxy-listen",
                                "127.0.0.1:0", "--proxy-trusted",
                                "127.0.0.1")
        self.dir = tempfile.mkdtemp(prefix="smtpx-haproxy-")
        self.h = HAProxy(self.dir, self.r.proxy_port)

    def tearDown(self):
        self.h.stop()
        code = self.r.stop()
        log = self.r.logtext()
        self.r.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.assertEqual(code, 0, "smtpx-recv exit status; log:\n" + log)

    def send(self, port, src):
        with smtplib.SMTP("127.0.0.1", port, timeout=30,
                          local_hostname="client.test",
                          source_address=(src, 0)) as s:
            self.assertEqual(s.sendmail("a@example.org", ["b@example.net"],
                                        MSG), {})

    def test_haproxy_v1_and_v2(self):
        self.send(self.h.v1, "127.0.0.5")
        self.send(self.h.v2, "127.0.0.6")
        msgs = self.r.messages()
        self.assertEqual(len(msgs), 2)
        got = b"".join(msgs)
        # The Received headers name the clients, never the proxy.
        self.assertIn(b"[127.0.0.5]", got)
        self.assertIn(b"[127.0.0.6]", got)
        self.assertNotIn(b"[127.0.0.1]", got)
        # HAProxy's health checks (version 2 LOCAL) come and go quietly.
        time.sleep(0.5)
        self.r.proc.send_signal(signal.SIGUSR1)
        end = time.monotonic() + peers.WAIT
        while "counters:" not in self.r.logtext() and time.monotonic() < end:
            time.sleep(0.05)
        line = [x for x in self.r.logtext().splitlines()
                if "counters:" in x][0]
        self.assertIn(" refused-proxy=0 ", line)
        self.assertIn(" messages=2 ", line)

    def test_hostile_headers(self):
        port = self.r.proxy_port
        # Not a trusted proxy: greeted as itself, its header is junk, and
        # its message shows its own address.
        s = connect_from("127.0.0.7", port)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220 "))
        s.sendall(b"PROXY TCP4 203.0.113.66 198.51.100.7 1 25\r\n")
        self.assertTrue(f.readline().startswith(b"500 "))
        s.close()
        with smtplib.SMTP("127.0.0.1", port, timeout=30,
                          source_address=("127.0.0.7", 0)) as c:
            c.sendmail("a@example.org", ["b@example.net"], MSG)
        self.assertIn(b"[127.0.0.7]", self.r.messages()[0])
        self.assertNotIn(b"203.0.113.66", self.r.messages()[0])
        # From the trusted address, headers that are not valid: closed
        # before any greeting.
        bad = [
            b"PROXY TCP4 203.0.113.66 198.51.100.7 01 25\r\n",
            b"PROXY TCP4 203.0.113.66\r\n",
            b"PROXY " + b"X" * 200 + b"\r\n",
            b"EHLO not.a.proxy\r\n",
            V2SIG + b"\x21\x11\xff\xff" + b"\x00" * 12,  # oversized
            v2_header("203.0.113.66", "198.51.100.7", 1, 25,
                      b"\x03\x00\x04\xde\xad\xbe\xef"),  # wrong CRC32C
            v2_header("203.0.113.66", "198.51.100.7", 1, 25,
                      b"\x04\x00\x09xx"),  # TLV past the end
            V2SIG + b"\x21\x12" + struct.pack(">H", 12) + b"\x00" * 12,
        ]
        for h in bad:
            s = connect_from("127.0.0.1", port)
            s.sendall(h)
            self.assertTrue(closed_silently(s), h)
            s.close()
        self.assertEqual(len(self.r.messages()), 1)
        self.r.proc.send_signal(signal.SIGUSR1)
        end = time.monotonic() + peers.WAIT
        while "counters:" not in self.r.logtext() and time.monotonic() < end:
            time.sleep(0.05)
        line = [x for x in self.r.logtext().splitlines()
                if "counters:" in x][0]
        self.assertIn(" refused-proxy=%d " % len(bad), line)


if __name__ == "__main__":
    if not os.access(RECV, os.X_OK):
        sys.exit("no %s: build first" % RECV)
    if not os.access(HAPROXY, os.X_OK):
        sys.exit("no haproxy: scripts/deps.sh check installs it")
    unittest.main(verbosity=2)
