#!/usr/bin/python3
"""Interop: smtpx-recv receiving each message once and acknowledging it
(--dedupe, --ack, --dsn), with Python's smtplib as the sender and an
aiosmtpd server (aio_server.py) as the mail system the acknowledgements go
to (--ack-via); what arrives there is read with Python's email package.

A message is sent again with the same Message-ID, within one run and
across a restart: it is stored once, every copy is answered 250, and the
log says new, then duplicate.  The acknowledgements (an RFC 8098 MDN, an
RFC 3464 "delivered" DSN) arrive, and arrive again for a duplicate; they
wait in their queue while the server they go to is down, and a restart
delivers what the last run left there.  Each test starts its own
receivers; every wait is bounded.

Usage: test_ack_recv.py BUILD_DIR   (the directory holding examples/smtpx-recv)
"""
import email
import email.policy
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
RECV = os.path.abspath(os.path.join(BUILD, "examples", "smtpx-recv"))
HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "mx.ack.test"

FROM = "alice@example.org"
RCPT = "bob@example.net"


def message(msgid=None, dnt=None, body="Order 1: 3 boxes of nails.\r\n",
            extra=""):
    head = extra + "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
    if msgid is not None:
        head += "Message-ID: <%s>\r\n" % msgid
    if dnt is not None:
        head += "Disposition-Notification-To: <%s>\r\n" % dnt
    return (head + "Subject: order\r\n\r\n" + body).encode()


def send(port, msg, mail_options=(), rcpt_options=(), rcpts=(RCPT,)):
    """One transaction; the reply to the end of the data, (code, text)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        code, text = s.mail(FROM, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r, list(rcpt_options))
            assert code == 250, (code, text)
        return s.data(msg)


def wait_for(what, cond, t=None):
    end = time.monotonic() + (max(20, peers.WAIT) if t is None else t)
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Capture:
    """aio_server.py on a port: what it receives lands in DIR as N.eml and
    N.env (the envelope)."""

    def __init__(self, port, d):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "aio_server.py"),
             str(port), d], stderr=subprocess.DEVNULL)
        peers.wait_port(port, self.proc)

    def count(self):
        """Messages received whole: N.eml is written first, then N.env,
        whose last line is tls=."""
        n = 0
        for name in os.listdir(self.dir):
            if name.endswith(".env"):
                with open(os.path.join(self.dir, name)) as f:
                    n += "\ntls=" in f.read()
        return n

    def get(self, n):
        """Message n (from 1) parsed, and its envelope as a dict of
        lists."""
        with open(os.path.join(self.dir, "%d.eml" % n), "rb") as f:
            msg = email.message_from_binary_file(f,
                                                 policy=email.policy.default)
        env = {}
        with open(os.path.join(self.dir, "%d.env" % n)) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                env.setdefault(k, []).append(v)
        return msg, env

    def stop(self):
        peers.stop_process(self.proc)


class AckRecv(unittest.TestCase):
    verbose = False

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpx-ack-recv-")
        self.maildir = os.path.join(self.dir, "Maildir")
        self.store = os.path.join(self.dir, "seen")
        self.receivers = []
        self.captures = []

    def tearDown(self):
        for r in self.receivers:
            if r.proc.poll() is None or not r.log.closed:
                code = r.stop()
                self.assertEqual(code, 0, "smtpx-recv exit status; log:\n" +
                                 r.logtext())
        for c in self.captures:
            c.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *extra):
        args = ["--dedupe", self.store] + list(extra)
        if self.verbose:
            args.append("-v")
        r = peers.Receiver(RECV, HOST, *args, maildir_path=self.maildir)
        self.receivers.append(r)
        return r

    def restart(self, r, *extra):
        self.assertEqual(r.stop(), 0, r.logtext())
        return self.start(*extra)

    def capture(self, port=None):
        port = port or peers.free_port()
        c = Capture(port, os.path.join(self.dir, "capture%d" % port))
        self.captures.append(c)
        return c, port

    def stored(self):
        new = os.path.join(self.maildir, "new")
        return sorted(os.listdir(new)) if os.path.isdir(new) else []

    def verdicts(self, r):
        """(status, verdict, key) of each message line of the log."""
        return re.findall(r" status=(\d+)(?: id=\S+)? verdict=(\w+) key=(\S*)",
                          r.logtext())

    def check_mdn(self, c, n, msgid, to=FROM):
        msg, env = c.get(n)
        self.assertEqual(env["from"], ["<>"])  # the null reverse-path
        self.assertEqual(env["to"], [to])
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"),
                         "disposition-notification")
        self.assertEqual(msg["To"].addresses[0].addr_spec, to)
        parts = [p for p in msg.walk()
                 if p.get_content_type() == "message/disposition-notification"]
        self.assertEqual(len(parts), 1, msg.as_string())
        # The email package reads a message/* part's fields as a message.
        fields = parts[0].get_payload()[0]
        self.assertEqual(fields["Original-Message-ID"], "<%s>" % msgid)
        self.assertEqual(re.sub(r"\s", "", fields["Final-Recipient"]).lower(),
                         "rfc822;" + RCPT)
        self.assertEqual(fields["Disposition"],
                         "automatic-action/MDN-sent-automatically; processed")
        self.assertIn(HOST, fields["Reporting-UA"])
        return msg

    # ---- receiving once ---------------------------------------------------

    def test_same_message_id_twice_then_across_a_restart(self):
        r = self.start()
        first = send(r.port, message("order-1@shop.test"))
        self.assertEqual(first[0], 250)
        self.assertIn(b"queued as", first[1])
        again = send(r.port, message("order-1@shop.test"))
        self.assertEqual(again[0], 250)
        self.assertNotIn(b"queued as", again[1])
        self.assertEqual(len(self.stored()), 1)
        self.assertEqual(self.verdicts(r),
                         [("250", "new", "order-1@shop.test"),
                          ("250", "duplicate", "order-1@shop.test")])
        # The store is durable: a new process still knows the id.
        r2 = self.restart(r)
        self.assertEqual(send(r2.port, message("order-1@shop.test"))[0], 250)
        self.assertEqual(len(self.stored()), 1)
        # Another id is another message.
        self.assertEqual(send(r2.port, message("order-2@shop.test"))[0], 250)
        self.assertEqual(len(self.stored()), 2)
        self.assertEqual(self.verdicts(r2),
                         [("250", "duplicate", "order-1@shop.test"),
                          ("250", "new", "order-2@shop.test")])
        with open(os.path.join(self.maildir, "new", self.stored()[0]),
                  "rb") as f:
            self.assertIn(b"Message-ID: <order-", f.read())

    def test_one_session_many_sends(self):
        """Several transactions in one session, the same message among
        them, with the pool of workers and without (--sync-threads 0)."""
        for threads in ("8", "0"):
            with self.subTest(sync_threads=threads):
                r = self.start("--sync-threads", threads)
                base = len(self.stored())
                with smtplib.SMTP("127.0.0.1", r.port, timeout=30) as s:
                    for i in (1, 2, 1, 3, 2, 1):
                        s.sendmail(FROM, [RCPT],
                                   message("t%s-%d@shop.test" % (threads, i)))
                self.assertEqual(len(self.stored()), base + 3)
                self.assertEqual([v for _, v, _ in self.verdicts(r)],
                                 ["new", "new", "duplicate", "new",
                                  "duplicate", "duplicate"])
                self.assertEqual(r.stop(), 0, r.logtext())
                self.assertIn("dedupe: 6 checked, 3 new, 0 redelivered, "
                              "3 duplicates", r.logtext())

    def test_key_is_escaped_on_the_log_line(self):
        r = self.start()
        self.assertEqual(send(r.port, message("a\\b@shop.test"))[0], 250)
        self.assertEqual(self.verdicts(r),
                         [("250", "new", "a\\\\b@shop.test")])

    def test_noid_refuse(self):
        r = self.start()  # refuse is the default
        code, text = send(r.port, message(None))
        self.assertEqual(code, 550)
        self.assertIn(b"5.6.0", text)
        self.assertEqual(self.stored(), [])
        self.assertRegex(r.logtext(), r"size=\d+ status=550\n")
        r2 = self.restart(r, "--dedupe-noid", "refuse")
        self.assertEqual(send(r2.port, message(None))[0], 550)
        self.assertEqual(self.stored(), [])

    def test_noid_hash(self):
        r = self.start("--dedupe-noid", "hash")
        self.assertEqual(send(r.port, message(None))[0], 250)
        # The same message by another path: a trace field more does not
        # make it another message.
        hop = "Received: from a.test by b.test; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
        self.assertEqual(send(r.port, message(None, extra=hop))[0], 250)
        self.assertEqual(send(r.port, message(None, body="Order 2\r\n"))[0],
                         250)
        self.assertEqual(len(self.stored()), 2)
        v = self.verdicts(r)
        self.assertEqual([x[1] for x in v], ["new", "duplicate", "new"])
        self.assertRegex(v[0][2], r"^sha256:[0-9a-f]{64}$")
        self.assertEqual(v[0][2], v[1][2])
        self.assertNotEqual(v[0][2], v[2][2])

    def test_noid_accept(self):
        r = self.start("--dedupe-noid", "accept")
        self.assertEqual(send(r.port, message(None))[0], 250)
        self.assertEqual(send(r.port, message(None))[0], 250)
        self.assertEqual(len(self.stored()), 2)
        self.assertEqual(self.verdicts(r), [("250", "new", ""),
                                            ("250", "new", "")])
        # Messages with an id are still suppressed.
        send(r.port, message("x@shop.test"))
        send(r.port, message("x@shop.test"))
        self.assertEqual(len(self.stored()), 3)

    def test_usage_errors(self):
        cases = [
            (["--maildir", "M", "--dedupe-window", "1d"],
             "--dedupe-window needs --dedupe FILE"),
            (["--maildir", "M", "--ack"], "--ack needs --dedupe FILE"),
            (["--maildir", "M", "--dedupe", "S", "--ack-via", "h:25"],
             "--ack-via needs --ack"),
            (["--maildir", "M", "--dedupe", "S", "--ack-from", "a@b"],
             "--ack-from needs --ack"),
            (["--discard", "--dedupe", "S"], "--dedupe needs --maildir"),
            (["--maildir", "M", "--dedupe", "S", "--dedupe-window", "0"],
             "--dedupe-window wants a duration"),
            (["--maildir", "M", "--dedupe", "S", "--dedupe-window", "7y"],
             "--dedupe-window wants a duration"),
            (["--maildir", "M", "--dedupe", "S", "--dedupe-max", "0"],
             "--dedupe-max wants a number"),
            (["--maildir", "M", "--dedupe", "S", "--dedupe-noid", "drop"],
             "--dedupe-noid wants refuse, hash or accept"),
            (["--maildir", "M", "--dedupe", "S", "--ack=sometimes"],
             "--ack takes nothing, or \"always\""),
            (["--maildir", "M", "--dedupe", "S", "--ack", "--ack-via",
              "127.0.0.1"], "--ack-via wants HOST:PORT"),
            (["--maildir", "M", "--dedupe", "S", "--ack", "--ack-via",
              "127.0.0.1:99999"], "--ack-via wants HOST:PORT"),
            (["--maildir", "M", "--dedupe", "S", "--ack", "--ack-from",
              "postmaster"], "--ack-from wants an address"),
        ]
        for args, why in cases:
            with self.subTest(args=args):
                p = subprocess.run([RECV, "--listen", "127.0.0.1:0"] + args,
                                   capture_output=True, text=True,
                                   timeout=60, cwd=self.dir)
                self.assertEqual(p.returncode, 64, p.stderr)
                self.assertIn("smtpx-recv: " + why, p.stderr)
        # Nothing was created by a refused command line.
        self.assertFalse(os.path.exists(os.path.join(self.dir, "S")))
        # A store that is not one is refused at start, clearly.
        bad = os.path.join(self.dir, "notastore")
        with open(bad, "w") as f:
            f.write("hello\n")
        p = subprocess.run([RECV, "--listen", "127.0.0.1:0", "--maildir",
                            self.maildir, "--dedupe", bad],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--dedupe %s: " % bad, p.stderr)
        with open(bad) as f:
            self.assertEqual(f.read(), "hello\n")  # left alone

    # ---- acknowledging ----------------------------------------------------

    def test_mdn_arrives_and_again_for_the_duplicate(self):
        c, port = self.capture()
        r = self.start("--ack", "--ack-via", "127.0.0.1:%d" % port)
        msgid = "order-7@shop.test"
        self.assertEqual(send(r.port, message(msgid, dnt=FROM))[0], 250)
        wait_for("the MDN", lambda: c.count() == 1)
        mdn = self.check_mdn(c, 1, msgid)
        self.assertEqual(mdn["From"].addresses[0].addr_spec,
                         "postmaster@" + HOST)
        # The duplicate: not stored, acknowledged again (the first
        # acknowledgement may be what was lost).
        self.assertEqual(send(r.port, message(msgid, dnt=FROM))[0], 250)
        wait_for("the second MDN", lambda: c.count() == 2)
        self.check_mdn(c, 2, msgid)
        self.assertEqual(len(self.stored()), 1)
        # A message that asks for none gets none (--ack, not always).
        self.assertEqual(send(r.port, message("quiet@shop.test"))[0], 250)
        self.assertEqual(r.stop(), 0, r.logtext())
        self.assertEqual(c.count(), 2)
        self.assertIn("2 acknowledgements queued (0 failed), 0 waiting",
                      r.logtext())

    def test_ack_always_and_ack_from(self):
        c, port = self.capture()
        r = self.start("--ack", "always", "--ack-via", "127.0.0.1:%d" % port,
                       "--ack-from", "orders@warehouse.test")
        self.assertEqual(send(r.port, message("o-9@shop.test"))[0], 250)
        wait_for("the MDN", lambda: c.count() == 1)
        mdn = self.check_mdn(c, 1, "o-9@shop.test")
        self.assertEqual(mdn["From"].addresses[0].addr_spec,
                         "orders@warehouse.test")

    def test_dsn_delivered(self):
        c, port = self.capture()
        r = self.start("--dsn", "--ack", "--ack-via", "127.0.0.1:%d" % port)
        code, text = send(r.port, message("o-10@shop.test"),
                          mail_options=["ENVID=env-10", "RET=HDRS"],
                          rcpt_options=["NOTIFY=SUCCESS",
                                        "ORCPT=rfc822;bob@example.net"])
        self.assertEqual(code, 250)
        wait_for("the DSN", lambda: c.count() == 1)
        dsn, env = c.get(1)
        self.assertEqual(env["from"], ["<>"])
        self.assertEqual(env["to"], [FROM])
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        parts = [p for p in dsn.walk()
                 if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(parts), 1, dsn.as_string())
        # The per-message block, then one block per recipient.
        blocks = parts[0].get_payload()
        self.assertEqual(blocks[0]["Original-Envelope-Id"], "env-10")
        self.assertIn(HOST, blocks[0]["Reporting-MTA"])
        self.assertEqual(len(blocks), 2)
        self.assertEqual(blocks[1]["Action"], "delivered")
        self.assertRegex(blocks[1]["Status"], r"^2\.\d{1,3}\.\d{1,3}$")
        self.assertEqual(re.sub(r"\s", "", blocks[1]["Final-Recipient"]).lower(),
                         "rfc822;" + RCPT)
        # A recipient that did not ask gets no DSN: the message has no
        # Disposition-Notification-To either, so nothing more comes.
        send(r.port, message("o-11@shop.test"), mail_options=["ENVID=e11"])
        self.assertEqual(r.stop(), 0, r.logtext())
        self.assertEqual(c.count(), 1)
        self.assertIn("1 acknowledgement queued (0 failed), 0 waiting",
                      r.logtext())

    def test_ack_waits_while_the_server_is_down(self):
        port = peers.free_port()  # nothing listens there yet
        r = self.start("--ack", "--ack-via", "127.0.0.1:%d" % port)
        self.assertEqual(send(r.port, message("o-12@shop.test", dnt=FROM))[0],
                         250)
        queue = os.path.join(self.dir, "seen.acks", "msg")
        wait_for("the deferral", lambda: re.search(
            r"ack queue: \S+: to=<alice@example\.org> .*status=deferred "
            r"\(451 connect to 127\.0\.0\.1", r.logtext()))
        self.assertEqual(len(os.listdir(queue)), 1)
        c, _ = self.capture(port)
        self.assertEqual(c.count(), 0)
        # Retry now rather than at the back-off's next try.
        r.proc.send_signal(signal.SIGUSR1)
        wait_for("the MDN", lambda: c.count() == 1)
        self.check_mdn(c, 1, "o-12@shop.test")
        wait_for("an empty queue", lambda: os.listdir(queue) == [])

    def test_restart_delivers_what_waits(self):
        port = peers.free_port()
        r = self.start("--ack", "--ack-via", "127.0.0.1:%d" % port)
        for i in (13, 14):
            send(r.port, message("o-%d@shop.test" % i, dnt=FROM))
        queue = os.path.join(self.dir, "seen.acks", "msg")
        self.assertEqual(len(os.listdir(queue)), 2)
        self.assertEqual(r.stop(), 0, r.logtext())
        self.assertIn("2 waiting", r.logtext())
        c, _ = self.capture(port)
        r2 = self.start("--ack", "--ack-via", "127.0.0.1:%d" % port)
        self.assertIn("2 acknowledgements waiting", r2.logtext())
        wait_for("both MDNs", lambda: c.count() == 2)
        ids = sorted(c.get(n)[0].get_payload()[1].get_payload()[0]
                     ["Original-Message-ID"] for n in (1, 2))
        self.assertEqual(ids, ["<o-13@shop.test>", "<o-14@shop.test>"])
        for n in (1, 2):
            self.check_mdn(c, n, c.get(n)[0].get_payload()[1]
                           .get_payload()[0]["Original-Message-ID"][1:-1])
        wait_for("an empty queue", lambda: os.listdir(queue) == [])


class AckRecvVerbose(AckRecv):
    """The same with -v: the SMTP dialogue and the engine's lines on the
    log must not disturb any of it."""
    verbose = True

    def test_verbose_log(self):
        c, port = self.capture()
        r = self.start("--ack", "--ack-via", "127.0.0.1:%d" % port)
        send(r.port, message("v-1@shop.test", dnt=FROM))
        wait_for("the MDN", lambda: c.count() == 1)
        log = r.logtext()
        self.assertIn("< mail FROM:<alice@example.org>", log)
        self.assertRegex(log, r"ack queue: .*127\.0\.0\.1")


if __name__ == "__main__":
    if not os.access(RECV, os.X_OK):
        sys.exit("no %s: build first" % RECV)
    unittest.main(verbosity=2)
