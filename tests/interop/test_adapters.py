#!/usr/bin/python3
"""Interop: the receivers built on other event libraries, smtpx-uv-recv
(libuv, the core fed by hand) and smtpx-event-recv (libevent, through the
pump and the transport, with STARTTLS), against Python's smtplib and raw
sockets: several messages per session, sessions side by side, a recipient
whose answer a timer of the event library gives later, a message of a
megabyte, thousands of pipelined commands read back late (the output held
while the client does not read), a silent client timed out, and a drain on
SIGTERM.  They show that the public API is enough to run sessions in
someone else's event loop.

Usage: test_adapters.py BUILD_DIR
"""
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
# Under valgrind (SMTPX_INTEROP_SLOW=1) everything takes longer.
WAIT = 60 if os.environ.get("SMTPX_INTEROP_SLOW") == "1" else 10
TLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "tls")
BODY = b"Subject: adapter\r\n\r\n" + (b"x" * 76 + b"\r\n") * 100


class Adapter:
    def __init__(self, prog, *extra):
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "examples", prog), "--listen", "127.0.0.1:0",
             "--hostname", "adapter.test", "--delay", "300"] + list(extra),
            stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if m is None:
            self.proc.kill()
            raise RuntimeError("%s did not start: %s" % (prog, line))
        self.port = int(m.group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        return code, self.proc.stderr.read()


class Base:
    PROG = None

    def setUp(self):
        if not os.access(os.path.join(BUILD, "examples", self.PROG), os.X_OK):
            self.skipTest("%s not built (its event library is missing; "
                          "scripts/deps.sh check installs it)" % self.PROG)
        self.a = None

    def tearDown(self):
        if self.a is not None:
            code, log = self.a.stop()
            self.assertEqual(code, 0, log)

    def start(self, *extra):
        self.a = Adapter(self.PROG, *extra)
        return self.a

    def test_messages(self):
        a = self.start()
        with smtplib.SMTP("127.0.0.1", a.port, local_hostname="c.test",
                          timeout=30) as s:
            for _ in range(3):
                self.assertEqual(s.sendmail("a@example.org",
                                            ["b@example.net"], BODY), {})
        errors = []

        def one():
            try:
                with smtplib.SMTP("127.0.0.1", a.port, timeout=30) as c:
                    c.sendmail("a@example.org", ["b@example.net"], BODY)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=one) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 1100
        with smtplib.SMTP("127.0.0.1", a.port, timeout=30) as s:
            self.assertEqual(s.sendmail("a@example.org", ["b@example.net"],
                                        big), {})
        code, log = a.stop()
        self.a = None
        self.assertEqual(code, 0, log)
        self.assertEqual(log.count(" message from=<a@example.org>"), 24, log)
        self.assertIn("size=%d" % len(big), log)
        self.assertIn("stopped after 24 messages", log)

    def test_answer_later(self):
        """The recipient's answer comes from a timer of the event library,
        300 ms later; the session then goes on."""
        a = self.start()
        with smtplib.SMTP("127.0.0.1", a.port, timeout=30) as s:
            s.ehlo("c.test")
            s.mail("a@example.org")
            t0 = time.monotonic()
            code, text = s.rcpt("slow@example.net")
            self.assertGreaterEqual(time.monotonic() - t0, 0.25)
            self.assertEqual((code, text), (250, b"2.1.5 Ok, checked later"))
            self.assertEqual(s.rcpt("fast@example.net")[0], 250)
            self.assertEqual(s.data(BODY)[0], 250)

    def test_pipelined_flood(self):
        """Thousands of commands sent before any reply is read: the output
        waits for the client, nothing is lost, nothing is cut."""
        a = self.start()
        n = 3000
        with socket.create_connection(("127.0.0.1", a.port), 10) as c:
            c.settimeout(30)
            c.sendall(b"EHLO flood.test\r\n" * n)
            time.sleep(0.5)
            got = b""
            while got.count(b"\r\n250 ") < n:
                chunk = c.recv(65536)
                self.assertTrue(chunk, "closed after %d replies" %
                                got.count(b"\r\n250 "))
                got += chunk
            self.assertEqual(got.count(b"\r\n250 "), n)

    def test_timeout(self):
        a = self.start("--timeout", "1")
        with socket.create_connection(("127.0.0.1", a.port), 10) as c:
            c.settimeout(10)
            f = c.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220 adapter.test"))
            t0 = time.monotonic()
            self.assertEqual(f.readline(),
                             b"421 4.4.2 Timeout, closing connection\r\n")
            # The 1 s timeout, not the default 5 minutes.
            self.assertLess(time.monotonic() - t0, max(3, WAIT))
            self.assertEqual(f.readline(), b"")

    def test_drain(self):
        a = self.start()
        idle = socket.create_connection(("127.0.0.1", a.port), 10)
        idle.settimeout(10)
        fi = idle.makefile("rb")
        fi.readline()
        with socket.create_connection(("127.0.0.1", a.port), 10) as c:
            c.settimeout(10)
            f = c.makefile("rb")
            f.readline()
            c.sendall(b"EHLO c\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            c.sendall(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
            f.readline()
            f.readline()
            self.assertTrue(f.readline().startswith(b"354"))
            a.proc.send_signal(signal.SIGTERM)
            # The idle session is told at once; the busy one finishes.
            self.assertTrue(fi.readline().startswith(b"421 4.3.2"))
            c.sendall(b"last words\r\n.\r\n")
            self.assertTrue(f.readline().startswith(b"250 "))
            self.assertTrue(f.readline().startswith(b"421 4.3.2"))
        idle.close()
        # It ends by itself once the last session has gone: wait for that
        # (a second SIGTERM now would find the default action back).
        try:
            code = a.proc.wait(WAIT)
        finally:
            _, log = a.stop()
        self.a = None
        self.assertEqual(code, 0, log)
        self.assertIn("stopped after 1 messages", log)


class UvRecv(Base, unittest.TestCase):
    PROG = "smtpx-uv-recv"


class EventRecv(Base, unittest.TestCase):
    PROG = "smtpx-event-recv"

    def test_starttls(self):
        a = self.start("--tls-cert", os.path.join(TLS, "server.pem"),
                       "--tls-key", os.path.join(TLS, "server.key"))
        ctx = ssl.create_default_context(cafile=os.path.join(TLS, "ca.pem"))
        # The certificate names mx.test and localhost, which smtplib
        # checks against the host it connected to.
        with smtplib.SMTP("localhost", a.port, timeout=30) as s:
            s.ehlo("c.test")
            s.starttls(context=ctx)
            code, _ = s.ehlo("c.test")
            self.assertEqual(code, 250)
            self.assertEqual(s.sendmail("a@example.org", ["slow@example.net"],
                                        BODY), {})
        code, log = a.stop()
        self.a = None
        self.assertEqual(code, 0, log)
        self.assertIn("tls=TLSv1.2", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
