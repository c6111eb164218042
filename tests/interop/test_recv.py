#!/usr/bin/python3
"""Interop: real SMTP clients from Debian talk to smtpx-recv over real
sockets on loopback, and what lands in the Maildir is checked byte for byte.

Clients: Python's smtplib, swaks and curl.  Each test starts its own
receiver on a free port with its own Maildir, and every wait is bounded.

Usage: test_recv.py BUILD_DIR      (the directory holding examples/smtpx-recv)
"""
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
RECV = os.path.join(BUILD, "examples", "smtpx-recv")

# A message with the hard parts: lines that begin with a dot (one of them a
# lone dot, which would end DATA unless stuffed), an 8-bit body, a long-ish
# line, a trailing line without text, and a line of spaces.
MESSAGE = (
    "From: Alice <alice@example.org>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: interop test\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "First line.\r\n"
    ".leading dot\r\n"
    "..two leading dots\r\n"
    ".\r\n"
    "Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u65e5\u672c\u8a9e\r\n"
    + ("x" * 900) + "\r\n"
    "   \r\n"
    "\r\n"
    "last line\r\n"
).encode("utf-8")

FROM = "alice@example.org"
RCPTS = ["bob@example.net", "carol@example.net"]


def start_receiver(*extra, **kw):
    return peers.Receiver(RECV, "mx.interop.test", *extra, **kw)


def split_trace(stored):
    """The stored file is Return-Path, Received (folded), then the message."""
    lines = stored.split(b"\n")
    assert lines[0].startswith(b"Return-Path: <"), lines[0]
    assert lines[1].startswith(b"Received: from "), lines[1]
    i = 2
    while lines[i].startswith(b"\t"):
        i += 1
    return lines[0], b"\n".join(lines[1:i]), b"\n".join(lines[i:])


def lf(data):
    return data.replace(b"\r\n", b"\n")


class ReceiverCase(unittest.TestCase):
    """A test with a receiver in self.r, which must end with status 0."""

    def setUp(self):
        self.r = None

    def tearDown(self):
        if self.r is not None:
            code = self.r.stop()
            log = self.r.logtext()
            self.r.cleanup()
            self.assertEqual(code, 0, "smtpx-recv exit status; log:\n" + log)


class RecvInterop(ReceiverCase):
    def start(self, *extra, **kw):
        self.r = start_receiver(*extra, **kw)
        return self.r

    def check_stored(self, stored, body, rcpts=RCPTS, crlf=False):
        rp, received, rest = split_trace(stored if not crlf else lf(stored))
        self.assertEqual(rp, b"Return-Path: <" + FROM.encode() + b">")
        self.assertIn(b"by mx.interop.test (libsmtpx) with ESMTP", received)
        self.assertIn(b"[127.0.0.1]", received)
        if len(rcpts) == 1:
            self.assertIn(b"for <" + rcpts[0].encode() + b">", received)
        else:
            self.assertNotIn(b"for <", received)
        expected = body if crlf else lf(body)
        actual = stored.split(b"\r\n\r\n", 1)[1] if False else None
        # Everything after the trace headers is the message, byte for byte.
        if crlf:
            head_end = stored.index(b"\r\nFrom: ") + 2
            self.assertEqual(stored[head_end:], expected)
        else:
            self.assertEqual(rest, expected)
        del actual

    def test_smtplib_message_bytes(self):
        r = self.start()
        with smtplib.SMTP("127.0.0.1", r.port, local_hostname="smtplib.test",
                          timeout=30) as s:
            code, caps = s.ehlo()
            self.assertEqual(code, 250)
            for ext in (b"PIPELINING", b"8BITMIME", b"SMTPUTF8", b"CHUNKING",
                        b"ENHANCEDSTATUSCODES", b"SIZE 10240000"):
                self.assertIn(ext, caps)
            refused = s.sendmail(FROM, RCPTS, MESSAGE,
                                 mail_options=["BODY=8BITMIME"])
            self.assertEqual(refused, {})
        msgs = r.messages()
        self.assertEqual(len(msgs), 1)
        self.check_stored(msgs[0], MESSAGE)
        log = r.logtext()
        self.assertRegex(log, r"helo=smtplib\.test from=<alice@example\.org> "
                              r"to=<bob@example\.net>,<carol@example\.net> "
                              r"size=\d+ status=250 id=")

    def test_smtplib_several_messages_one_session(self):
        r = self.start()
        with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
            for i in range(5):
                body = MESSAGE + b"message %d\r\n" % i
                self.assertEqual(s.sendmail(FROM, [RCPTS[0]], body), {})
        msgs = r.messages()
        self.assertEqual(len(msgs), 5)
        bodies = sorted(split_trace(m)[2] for m in msgs)
        self.assertEqual(bodies, sorted(lf(MESSAGE + b"message %d\r\n" % i)
                                        for i in range(5)))
        for m in msgs:
            self.assertIn(b"for <bob@example.net>", m)

    def test_smtplib_refusals(self):
        r = self.start("--max-size", "2000", "--max-rcpts", "2")
        with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
            s.ehlo()
            # SIZE declared too big: refused at MAIL (RFC 1870).
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail(FROM, RCPTS, b"x" * 3000 + b"\r\n")
            self.assertEqual(cm.exception.smtp_code, 552)
            s.rset()
            # Too many recipients: the third gets 452, the others go on.
            refused = s.sendmail(FROM, ["a@x.test", "b@x.test", "c@x.test"],
                                 b"Subject: three\r\n\r\nhi\r\n")
            self.assertEqual(list(refused), ["c@x.test"])
            self.assertEqual(refused["c@x.test"][0], 452)
            # A message larger than announced is read, then refused.
            s.docmd("MAIL FROM:<%s>" % FROM)
            s.docmd("RCPT TO:<a@x.test>")
            code, _ = s.docmd("DATA")
            self.assertEqual(code, 354)
            s.send(b"y" * 2500 + b"\r\n.\r\n")
            code, msg = s.getreply()
            self.assertEqual(code, 552)
            self.assertEqual(s.noop()[0], 250)
        self.assertEqual(len(r.messages()), 1)

    def test_swaks(self):
        r = self.start()
        path = os.path.join(r.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(MESSAGE)
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % r.port, "--from", FROM,
             "--to", ",".join(RCPTS), "--helo", "swaks.test",
             "--data", "@" + path, "--pipeline", "--silent", "2"],
            capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        msgs = r.messages()
        self.assertEqual(len(msgs), 1)
        # swaks always ends the data with "\r\n.\r\n", so a message that
        # already ends in CRLF arrives with one empty line more.
        self.check_stored(msgs[0], MESSAGE + b"\r\n")

    def test_curl(self):
        r = self.start()
        path = os.path.join(r.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(MESSAGE)
        args = ["curl", "--silent", "--show-error",
                "smtp://127.0.0.1:%d/curl.test" % r.port,
                "--mail-from", FROM, "--upload-file", path,
                "--max-time", "60"]
        for rc in RCPTS:
            args += ["--mail-rcpt", rc]
        p = subprocess.run(args, capture_output=True, timeout=90)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        msgs = r.messages()
        self.assertEqual(len(msgs), 1)
        self.check_stored(msgs[0], MESSAGE)

    def test_crlf_option(self):
        r = self.start("--crlf")
        with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
            self.assertEqual(s.sendmail(FROM, RCPTS, MESSAGE), {})
        msgs = r.messages()
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].startswith(b"Return-Path: <alice@example.org>\r\n"))
        self.check_stored(msgs[0], MESSAGE, crlf=True)

    def test_pipelined_burst_and_smuggling(self):
        """A raw client pipelines two transactions in one write; the first
        message holds an <LF>.<LF> look-alike with a smuggled MAIL behind
        it, which must stay inside that one message."""
        r = self.start()
        burst = (b"EHLO raw.test\r\n"
                 b"MAIL FROM:<alice@example.org>\r\n"
                 b"RCPT TO:<bob@example.net>\r\n"
                 b"DATA\r\n")
        body1 = (b"Subject: smuggle\r\n\r\nA\n.\nMAIL FROM:<evil@x.test>\r\n"
                 b"RCPT TO:<victim@x.test>\r\nDATA\r\nevil\r\n")
        tail = (b".\r\n"
                b"MAIL FROM:<alice@example.org>\r\n"
                b"RCPT TO:<bob@example.net>\r\n"
                b"DATA\r\n"
                b"Subject: second\r\n\r\nok\r\n.\r\nQUIT\r\n")
        with socket.create_connection(("127.0.0.1", r.port), 10) as c:
            c.settimeout(10)
            f = c.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220 "))
            c.sendall(burst)
            replies = []
            while True:
                line = f.readline()
                replies.append(line)
                if line.startswith(b"354"):
                    break
            c.sendall(body1 + tail)
            rest = f.read()
        codes = [l[:4] for l in replies if not l[3:4] == b"-"]
        self.assertEqual(codes, [b"250 ", b"250 ", b"250 ", b"354 "])
        self.assertEqual(re.findall(rb"^(\d{3}) ", rest, re.M),
                         [b"250", b"250", b"250", b"354", b"250", b"221"])
        msgs = [split_trace(m)[2] for m in r.messages()]
        self.assertEqual(len(msgs), 2)
        self.assertIn(b"Subject: smuggle\nA\n.\nMAIL FROM:<evil@x.test>\n"
                      .replace(b"smuggle\n", b"smuggle\n\n"), b"".join(msgs))
        self.assertIn(b"Subject: second\n\nok\n", b"".join(msgs))

    def raw_session(self, port, data, banner=True):
        """Send data in one write after the greeting; return everything
        the server says until it closes."""
        with socket.create_connection(("127.0.0.1", port), 10) as c:
            c.settimeout(10)
            f = c.makefile("rb")
            if banner:
                self.assertTrue(f.readline().startswith(b"220 "))
            c.sendall(data)
            return f.read()

    def test_refused_data_smuggling(self):
        """A refused DATA with message content pipelined behind it in one
        write (RFC 2920 3.1 forbids it): the content holds a second
        transaction, which must never run (SMTP smuggling)."""
        r = self.start()
        data = (b"EHLO raw.test\r\n"
                b"MAIL FROM:<a@x.test>\r\n"
                b"RCPT TO:\r\n"
                b"DATA\r\n"
                b"RSET\r\n"
                b"MAIL FROM:<evil@x.test>\r\n"
                b"RCPT TO:<victim@x.test>\r\n"
                b"DATA\r\n"
                b"Subject: smuggled\r\n\r\nevil\r\n.\r\nQUIT\r\n")
        rest = self.raw_session(r.port, data)
        codes = re.findall(rb"^(\d{3}) ", rest, re.M)
        self.assertEqual(codes, [b"250", b"250", b"501", b"503", b"421"],
                         rest)
        self.assertEqual(r.messages(), [])

    def test_http_request_with_smtp_body(self):
        """A browser's POST carrying an SMTP dialogue (a cross-protocol
        attack): the session ends at the request line."""
        r = self.start()
        body = (b"EHLO x\r\nMAIL FROM:<a@x.test>\r\n"
                b"RCPT TO:<bob@example.net>\r\nDATA\r\n"
                b"Subject: via http\r\n\r\nevil\r\n.\r\nQUIT\r\n")
        req = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
               b"Accept: text/html,application/xhtml+xml\r\n"
               b"Accept-Language: en-US,en;q=0.5\r\n"
               b"Accept-Encoding: gzip, deflate\r\n"
               b"Content-Type: text/plain\r\n"
               b"Origin: http://attacker.example\r\n"
               b"Connection: keep-alive\r\n"
               b"Referer: http://attacker.example/\r\n"
               b"Content-Length: %d\r\n\r\n" % (r.port, len(body)))
        rest = self.raw_session(r.port, req + body)
        self.assertEqual(re.findall(rb"^(\d{3}) ", rest, re.M), [b"421"],
                         rest)
        self.assertEqual(r.messages(), [])
        self.assertIn("forbidden command", r.logtext())

    def converse(self, port, steps):
        """One session: each (line, expected code prefix) in turn, a reply
        read whole for each; returns what the server says afterwards."""
        with socket.create_connection(("127.0.0.1", port), 10) as c:
            c.settimeout(10)
            f = c.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220 "))
            for line, want in steps:
                if line is not None:
                    c.sendall(line + b"\r\n")
                while True:
                    reply = f.readline()
                    if reply[3:4] != b"-":
                        break
                self.assertTrue(reply.startswith(want), (line, reply))
            if reply.startswith(b"421"):
                return b""  # the server has closed
            c.sendall(b"QUIT\r\n")
            return f.read()

    def test_hostile_text_in_log_and_headers(self):
        """What a client chooses - its HELO name, addresses, an AUTH
        identity, any command line - holding ESC, NUL, CR, DEL or 8-bit
        octets: refused, or shown escaped.  No log line is forged, no
        escape sequence reaches the log, and the stored message's trace
        headers hold no header of the client's making."""
        r = self.start("-v", "--local-domain", "example.net")
        evil_id = base64.b64encode(b"\x00bob\nX-Forged: 1\x1b[0m\x00pw")
        self.converse(r.port, [
            (b"EHLO ev\x1b[2Jil.example", b"501"),
            (b"EHLO good.example", b"250"),
            (b"NOOP \x1b[31mred\x00nul\x7f\xff", b"500"),
            (b"NOOP a\rb", b"500"),
            (b"AUTH PLAIN " + evil_id, b"5"),
            (b"MAIL FROM:<\"a\x1bb\"@x.example>", b"501"),
            # A line end inside a name makes the rest a line of its own:
            # one that looks like a header ends the session.
            (b"EHLO x.example\r\nX-Injected: 1", b"250"),
            (None, b"421")])
        rest = self.converse(r.port, [
            (b"EHLO \xc3\xa9vil(x);by.example", b"250"),
            (b"MAIL FROM:<a\xc3\xa9@x.example> SMTPUTF8", b"250"),
            (b"RCPT TO:<b\xe2\x80\xae@example.net>", b"250"),
            (b"DATA", b"354"),
            (b"Subject: t\r\n\r\nbody\r\n.", b"250")])
        self.assertTrue(rest.startswith(b"221 "), rest)
        (stored,) = r.messages()
        head = stored.split(b"\n\n", 1)[0]
        names = [l.split(b":", 1)[0] for l in head.split(b"\n")
                 if l and not l[:1].isspace()]
        self.assertEqual(names, [b"Return-Path", b"Received", b"Subject"],
                         head)
        self.assertIn(b"Received: from ??vil?x??by.example", head)
        log = r.logtext().encode("utf-8", "surrogateescape")
        stamp = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                           rb"smtpx-recv\[\d+\]: [\x20-\x7e]*$")
        for l in log.split(b"\n")[:-1]:
            self.assertRegex(l, stamp)
        self.assertIn(rb"< NOOP \x1b[31mred\x00nul\x7f\xff", log)
        self.assertIn(rb"< EHLO ev\x1b[2Jil.example", log)
        self.assertIn(rb"helo=\xc3\xa9vil(x);by.example "
                      rb"from=<a\xc3\xa9@x.example> "
                      rb"to=<b\xe2\x80\xae@example.net>", log)
        self.assertNotIn(b"X-Forged", log)

    def test_sigterm_drains(self):
        r = self.start()
        # An idle session, told at once: the sign that the signal was
        # taken while the other is in DATA.
        idle = socket.create_connection(("127.0.0.1", r.port), 10)
        idle.settimeout(peers.WAIT)
        fi = idle.makefile("rb")
        fi.readline()
        with socket.create_connection(("127.0.0.1", r.port), 10) as c:
            c.settimeout(peers.WAIT)
            f = c.makefile("rb")
            f.readline()
            c.sendall(b"EHLO t.test\r\nMAIL FROM:<a@b.test>\r\n"
                      b"RCPT TO:<c@d.test>\r\nDATA\r\n")
            while not f.readline().startswith(b"354"):
                pass
            r.proc.send_signal(signal.SIGTERM)
            self.assertTrue(fi.readline().startswith(b"421 4.3.2"))
            # The transaction in progress still completes, then 421.
            c.sendall(b"Subject: during shutdown\r\n\r\nbody\r\n.\r\n")
            self.assertTrue(f.readline().startswith(b"250 "))
            self.assertTrue(f.readline().startswith(b"421 4.3.2"))
        idle.close()
        r.proc.wait(peers.WAIT)
        self.assertEqual(r.proc.returncode, 0)
        self.assertEqual(len(r.messages()), 1)

    def test_concurrent_durable(self):
        """Many clients at once: their messages are synced by the delivery
        threads and committed in groups; each client's 250 names its own
        file, which is in new/ with the client's content."""
        import threading
        r = self.start("--sync-threads", "3")
        n = 40
        got = {}
        errors = []

        def one(i):
            try:
                body = ("Subject: %d\r\n\r\nmessage %d\r\n" % (i, i)).encode()
                with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
                    s.ehlo("c%d.test" % i)
                    s.mail(FROM)
                    s.rcpt(RCPTS[0])
                    code, text = s.data(body)
                    got[i] = (code, text)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        names = set()
        for i in range(n):
            code, text = got[i]
            self.assertEqual(code, 250)
            m = re.search(rb"queued as (\S+)", text)
            self.assertIsNotNone(m, text)
            name = m.group(1).decode()
            names.add(name)
            with open(os.path.join(r.maildir, "new", name), "rb") as f:
                self.assertIn(b"\nmessage %d\n" % i, f.read())
        self.assertEqual(len(names), n)
        self.assertEqual(len(os.listdir(os.path.join(r.maildir, "tmp"))), 0)

    def test_client_gone_while_storing(self):
        """Clients that hang up right after their final dot, while the
        delivery threads hold their messages: the receiver carries on, and
        what it keeps is whole (in new/, never half in tmp/)."""
        r = self.start("--sync-threads", "2")
        for i in range(30):
            with socket.create_connection(("127.0.0.1", r.port), 10) as c:
                c.settimeout(10)
                f = c.makefile("rb")
                f.readline()
                c.sendall(b"EHLO t.test\r\nMAIL FROM:<a@b.test>\r\n"
                          b"RCPT TO:<c@d.test>\r\nDATA\r\n")
                while not f.readline().startswith(b"354"):
                    pass
                c.sendall(b"Subject: gone\r\n\r\nbody %d\r\n.\r\n" % i)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
        # Still serving, and nothing half-written is left behind.
        with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
            self.assertEqual(s.noop()[0], 250)
        # The sync threads finish (or drop) what the gone clients left.
        tmp = os.path.join(r.maildir, "tmp")
        end = time.monotonic() + peers.WAIT
        while os.listdir(tmp) and time.monotonic() < end:
            time.sleep(0.05)
        self.assertEqual(len(os.listdir(tmp)), 0)
        for m in r.messages():
            self.assertTrue(m.endswith(b"\n"), m)

    def test_limits_and_counters(self):
        """Per-address limits: the third session from one address gets 421
        4.7.0, the third message in a minute 450 4.7.1; SIGUSR1 reports the
        counters in the log."""
        r = self.start("--limit-addr-sessions", "2", "--limit-msg-rate", "2")
        a = smtplib.SMTP("127.0.0.1", r.port, timeout=30)
        b = smtplib.SMTP("127.0.0.1", r.port, timeout=30)
        with self.assertRaises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP("127.0.0.1", r.port, timeout=30)
        self.assertEqual(e.exception.smtp_code, 421)
        self.assertIn(b"too many connections from 127.0.0.1",
                      e.exception.smtp_error)
        a.sendmail(FROM, RCPTS[:1], b"Subject: 1\r\n\r\none\r\n")
        b.sendmail(FROM, RCPTS[:1], b"Subject: 2\r\n\r\ntwo\r\n")
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            a.sendmail(FROM, RCPTS[:1], b"Subject: 3\r\n\r\nthree\r\n")
        self.assertEqual(e.exception.smtp_code, 450)
        a.quit()
        b.quit()
        self.assertEqual(len(r.messages()), 2)
        r.proc.send_signal(signal.SIGUSR1)
        end = time.monotonic() + peers.WAIT
        while "counters:" not in r.logtext() and time.monotonic() < end:
            time.sleep(0.05)
        line = [x for x in r.logtext().splitlines() if "counters:" in x][0]
        self.assertIn(" refused-addr=1 ", line)
        self.assertIn(" mail-rate=1 ", line)
        self.assertIn(" messages=2 ", line)


class RecvLocalSocket(ReceiverCase):
    """--listen /PATH: LMTP on a local (Unix) socket, the way an MTA hands
    mail to a delivery agent (Postfix's lmtp:unix:PATH)."""

    def start(self, path, *extra):
        self.r = start_receiver("--lmtp", "--listen", path, *extra)
        end = time.monotonic() + 20
        while "listening on " + path not in self.r.logtext():
            self.assertLess(time.monotonic(), end, self.r.logtext())
            time.sleep(0.02)
        return self.r

    def sock_path(self):
        d = tempfile.mkdtemp(prefix="smtpx-sock-")
        self.addCleanup(shutil.rmtree, d, True)
        return d, os.path.join(d, "lmtp.sock")

    def test_smtplib_lmtp(self):
        """smtplib's LMTP client on the socket: one reply per recipient,
        the message stored, the socket made with --socket-mode and removed
        when smtpx-recv ends."""
        d, path = self.sock_path()
        r = self.start(path, "--socket-mode", "660")
        st = os.lstat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        s = smtplib.LMTP(path, local_hostname="mta.test", timeout=30)
        code, caps = s.ehlo("mta.test")
        self.assertEqual(code, 250)
        self.assertIn(b"PIPELINING", caps)
        s.mail(FROM)
        for rc in RCPTS:
            self.assertEqual(s.rcpt(rc)[0], 250)
        s.putcmd("data")
        self.assertEqual(s.getreply()[0], 354)
        s.send(smtplib.quotedata(MESSAGE.decode("utf-8")).encode("utf-8")
               + b".\r\n")
        # RFC 2033 4.2: one reply for each accepted recipient.
        self.assertEqual(s.getreply()[0], 250)
        self.assertEqual(s.getreply()[0], 250)
        s.quit()
        (got,) = r.messages()
        rp, received, rest = split_trace(got)
        self.assertEqual(rp, b"Return-Path: <" + FROM.encode() + b">")
        self.assertIn(b"Received: from mta.test", received)
        self.assertIn(b"with LMTP", received)
        self.assertEqual(rest, lf(MESSAGE))
        self.assertRegex(r.logtext(), r"local helo=mta\.test from=<alice@"
                                      r"example\.org> to=<bob@example\.net>,"
                                      r"<carol@example\.net> size=\d+ "
                                      r"status=250 id=")
        self.assertEqual(r.stop(), 0, r.logtext())
        self.assertFalse(os.path.lexists(path))
        r.cleanup()
        self.r = None

    def test_stale_socket_and_refusals(self):
        """A socket file left by a receiver that is gone is replaced; a
        plain file at the path is kept and smtpx-recv says why it cannot
        listen; a live receiver's socket is not taken over."""
        d, path = self.sock_path()
        with socket.socket(socket.AF_UNIX) as old:
            old.bind(path)  # bound, never removed: what a crash leaves
        r = self.start(path)
        with smtplib.LMTP(path, timeout=30) as s:
            self.assertEqual(s.ehlo("mta.test")[0], 250)
        # A second receiver on the same path: refused, the first unharmed.
        p = subprocess.run([RECV, "--lmtp", "--listen", path, "--discard"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"cannot listen on " + path.encode(), p.stderr)
        self.assertIn(b"Address already in use", p.stderr)
        with smtplib.LMTP(path, timeout=30) as s:
            self.assertEqual(s.ehlo("mta.test")[0], 250)
        self.assertEqual(r.stop(), 0, r.logtext())
        r.cleanup()
        self.r = None
        with open(path, "w") as f:
            f.write("not a socket\n")
        p = subprocess.run([RECV, "--lmtp", "--listen", path, "--discard"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"cannot listen on " + path.encode(), p.stderr)
        self.assertIn(b"File exists", p.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), "not a socket\n")
        for args, why in (
                (["--listen", "/" + "a" * 200], b"a path too long"),
                (["--listen", path, "--socket-mode", "9"], b"octal"),
                (["--listen", path, "--socket-mode", "1777"], b"octal"),
                (["--listen", "127.0.0.1:0", "--socket-mode", "600"],
                 b"needs a local socket")):
            p = subprocess.run([RECV, "--discard"] + args,
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 64, (args, p.stderr))
            self.assertIn(why, p.stderr)

    def test_postfix_lmtp_unix(self):
        """A private Postfix whose transport is lmtp:unix:PATH hands the
        mail smtplib gave its smtpd to smtpx-recv on the socket, as its
        unprivileged lmtp(8) client (hence --socket-mode 666)."""
        if os.getuid() != 0:
            self.skipTest("a private Postfix needs root")
        d, path = self.sock_path()
        os.chmod(d, 0o755)
        r = self.start(path, "--socket-mode", "666")
        port = peers.free_port()
        pf = peers.PrivatePostfix(
            d, port,
            "mynetworks = 127.0.0.0/8\n"
            "smtpd_relay_restrictions = permit_mynetworks, reject\n"
            "default_transport = lmtp:unix:%s\n"
            "relay_transport = lmtp:unix:%s\n" % (path, path))
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                self.assertEqual(s.sendmail(FROM, RCPTS, MESSAGE,
                                            mail_options=["BODY=8BITMIME"]),
                                 {})
            # Postfix logs each recipient once smtpx-recv answered it.
            end = time.monotonic() + 30
            while pf.maillog().count("status=sent") < 2:
                self.assertLess(time.monotonic(), end, pf.maillog() +
                                r.logtext())
                time.sleep(0.1)
            log = pf.maillog()
        finally:
            pf.stop()
        (got,) = r.messages()
        self.assertIn(b"by mx.interop.test (libsmtpx) with LMTP", got)
        # Postfix adds its own Received, Message-Id and Date; the body is
        # unchanged.
        self.assertTrue(got.endswith(lf(MESSAGE).split(b"\n\n", 1)[1]),
                        got[-300:])
        self.assertIn("relay=postfix.test[%s]" % path, log)
        self.assertEqual(log.count("status=sent"), 2, log)
        self.assertIn("local helo=postfix.test from=<alice@example.org> "
                      "to=<bob@example.net>,<carol@example.net>", r.logtext())


if __name__ == "__main__":
    if not os.access(RECV, os.X_OK):
        sys.exit("no %s: build first" % RECV)
    unittest.main(verbosity=2)
