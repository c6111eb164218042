#!/usr/bin/python3
"""Interop: smtpx-relay between real peers.  Python's smtplib submits;
downstream is an aiosmtpd server whose answers the test steers (451, 550)
or smtpx-recv; bounces and reports are delivered to the sender's Maildir
by the relay itself and read with Python's email package.

Usage: test_relay.py BUILD_DIR
"""
import email
import email.policy
import os
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
from relay_peer import Relay  # noqa: E402

BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else "build"
HERE = os.path.dirname(os.path.abspath(__file__))

MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
           b"Subject: relay test\r\nMessage-ID: <t1@example.org>\r\n\r\n"
           b"line one\r\n.leading dot\r\nlast\r\n")


def wait_for(cond, t=None, step=0.05):
    end = time.monotonic() + (max(15, peers.WAIT) if t is None else t)
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


class Downstream:
    """flaky_server.py on a free port."""

    def __init__(self, dir):
        self.dir = os.path.join(dir, "down")
        os.makedirs(self.dir)
        self.port = peers.free_port()
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "flaky_server.py"),
             str(self.port), self.dir])
        peers.wait_port(self.port, self.proc)

    def flag(self, name, on):
        p = os.path.join(self.dir, name)
        if on:
            open(p, "w").close()
        elif os.path.exists(p):
            os.unlink(p)

    def stored(self):
        return sorted(n for n in os.listdir(self.dir) if n.endswith(".eml"))

    def rcpts(self):
        p = os.path.join(self.dir, "rcpts")
        return int(open(p).read()) if os.path.exists(p) else 0

    def stop(self):
        peers.stop_process(self.proc)


class UnixSMTP(smtplib.SMTP):
    """Python's smtplib over a local (Unix) socket: the host is its
    path."""

    def _get_socket(self, host, port, timeout):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(host)
        return s


def maildir_msgs(path):
    new = os.path.join(path, "new")
    if not os.path.isdir(new):
        return []
    out = []
    for n in sorted(os.listdir(new)):
        with open(os.path.join(new, n), "rb") as f:
            out.append(email.message_from_bytes(f.read(),
                                                policy=email.policy.default))
    return out


def status_part(msg):
    """The delivery-status part of a report: (per-message, [per-rcpt])."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    for part in msg.iter_parts():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            return blocks[0], blocks[1:]
    raise AssertionError("no message/delivery-status part")


class RelayInterop(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpx-relay-")
        self.down = Downstream(self.dir)
        self.mail = os.path.join(self.dir, "mail")
        self.relay = None

    def start_relay(self, *extra):
        self.relay = Relay(
            BUILD, self.dir, "--smarthost", "127.0.0.1:%d" % self.down.port,
            "--smarthost-tls", "none", "--mynetworks", "127.0.0.0/8",
            "--local-domain", "example.org", "--maildir", self.mail,
            *extra).start()
        return self.relay

    def tearDown(self):
        code = None
        if self.relay is not None and self.relay.proc.poll() is None:
            code = self.relay.stop()
        self.down.stop()
        log = self.relay.logtext() if self.relay else ""
        if self.relay is not None:
            self.relay.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if code is not None:
            self.assertEqual(code, 0, "smtpx-relay exit status; log:\n" + log)

    def send(self, to, sender="alice@example.org", rcpt_options=(),
             mail_options=(), msg=MESSAGE):
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail(sender, list(mail_options))
            code, _ = s.rcpt(to, list(rcpt_options))
            self.assertEqual(code, 250)
            code, text = s.data(msg)
            self.assertEqual(code, 250, text)
            return text.decode()

    def test_defer_then_deliver_once(self):
        """451 downstream: deferred with the reply, then delivered once."""
        self.down.flag("defer", True)
        self.start_relay("--retry-min", "1s", "--retry-max", "1s")
        self.send("bob@example.net")
        self.assertTrue(wait_for(lambda: self.down.rcpts() >= 1))
        self.assertTrue(wait_for(
            lambda: "451 Try again later" in self.relay.listing() or
            "451 4.3.0 Try again later" in self.relay.listing()),
            self.relay.listing())
        self.assertEqual(self.relay.queued(), 1)
        self.assertEqual(self.down.stored(), [])
        self.down.flag("defer", False)
        self.assertTrue(self.relay.wait_empty(20), self.relay.logtext())
        time.sleep(2.5)  # more than a retry interval: nothing comes again
        self.assertEqual(len(self.down.stored()), 1)
        with open(os.path.join(self.down.dir, "1.eml"), "rb") as f:
            stored = f.read()
        self.assertTrue(stored.endswith(MESSAGE), stored)
        self.assertIn("Mail queue is empty", self.relay.listing())
        self.assertEqual(maildir_msgs(os.path.join(self.mail, "alice")), [])

    def test_delay_warning_then_expiry(self):
        """A recipient deferred past --delay-warning gets one "delayed"
        report; past --expire, a bounce (5.4.7) and the message goes."""
        self.down.flag("defer", True)
        self.start_relay("--retry-min", "1s", "--retry-max", "1s",
                         "--delay-warning", "1s", "--expire", "4s")
        self.send("bob@example.net")
        box = os.path.join(self.mail, "alice")
        self.assertTrue(wait_for(lambda: len(maildir_msgs(box)) >= 1),
                        self.relay.logtext())
        _, rcpts = status_part(maildir_msgs(box)[0])
        self.assertEqual(rcpts[0]["Action"], "delayed")
        self.assertEqual(rcpts[0]["Status"], "4.3.0")
        self.assertIn("Will-Retry-Until", rcpts[0])
        self.assertTrue(wait_for(lambda: len(maildir_msgs(box)) == 2, t=20),
                        self.relay.logtext())
        self.assertTrue(self.relay.wait_empty(5))
        reports = maildir_msgs(box)
        actions = sorted(status_part(m)[1][0]["Action"] for m in reports)
        self.assertEqual(actions, ["delayed", "failed"])
        failed = [m for m in reports
                  if status_part(m)[1][0]["Action"] == "failed"][0]
        r = status_part(failed)[1][0]
        self.assertEqual(r["Status"], "5.4.7")
        self.assertIn("451", r["Diagnostic-Code"])
        self.assertEqual(self.down.stored(), [])

    def test_bounce_read_by_python(self):
        """550 downstream: a multipart/report bounce reaches the sender's
        Maildir, and Python's email package reads its delivery status."""
        self.down.flag("reject", True)
        self.start_relay()
        self.send("bob@example.net", rcpt_options=["ORCPT=rfc822;bob@example.net"],
                  mail_options=["RET=HDRS", "ENVID=QQ314159"])
        box = os.path.join(self.mail, "alice")
        self.assertTrue(wait_for(lambda: len(maildir_msgs(box)) == 1),
                        self.relay.logtext())
        self.assertTrue(self.relay.wait_empty(10), self.relay.logtext())
        b = maildir_msgs(box)[0]
        self.assertEqual(b["Return-Path"], "<>")
        self.assertIn("MAILER-DAEMON@relay.test", b["From"])
        self.assertEqual(b["Auto-Submitted"], "auto-replied")
        per_msg, rcpts = status_part(b)
        self.assertEqual(per_msg["Reporting-MTA"], "dns; relay.test")
        self.assertEqual(per_msg["Original-Envelope-Id"], "QQ314159")
        self.assertEqual(len(rcpts), 1)
        r = rcpts[0]
        self.assertEqual(r["Final-Recipient"], "rfc822; bob@example.net")
        self.assertEqual(r["Original-Recipient"], "rfc822; bob@example.net")
        self.assertEqual(r["Action"], "failed")
        self.assertEqual(r["Status"], "5.1.1")
        self.assertEqual(r["Remote-MTA"], "dns; 127.0.0.1")
        self.assertIn("550", r["Diagnostic-Code"])
        self.assertIn("No such user here", r["Diagnostic-Code"])
        # RET=HDRS: the headers come back, the body does not.
        parts = list(b.iter_parts())
        self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: relay test", parts[2].get_content())
        self.assertNotIn(".leading dot", b.as_string())

    def test_bounce_full(self):
        """RET=FULL: the whole message comes back as message/rfc822."""
        self.down.flag("reject", True)
        self.start_relay()
        self.send("bob@example.net", mail_options=["RET=FULL"])
        box = os.path.join(self.mail, "alice")
        self.assertTrue(wait_for(lambda: len(maildir_msgs(box)) == 1))
        parts = list(maildir_msgs(box)[0].iter_parts())
        self.assertEqual(parts[2].get_content_type(), "message/rfc822")
        inner = parts[2].get_payload()[0]
        self.assertEqual(inner["Subject"], "relay test")
        self.assertIn(".leading dot", inner.get_content())

    def test_no_bounce_for_a_bounce(self):
        """A failed message from <> is logged and dropped, not bounced."""
        self.down.flag("reject", True)
        self.start_relay()
        self.send("bob@example.net", sender="")
        self.assertTrue(self.relay.wait_empty(10))
        self.assertTrue(wait_for(lambda: "dropped" in self.relay.logtext()))
        self.assertEqual(os.listdir(self.mail) if os.path.isdir(self.mail)
                         else [], [])

    def test_bounce_of_bounce_to_postmaster(self):
        self.down.flag("reject", True)
        self.start_relay("--postmaster", "postmaster@example.org")
        self.send("bob@example.net", sender="")
        box = os.path.join(self.mail, "postmaster")
        self.assertTrue(wait_for(lambda: len(maildir_msgs(box)) == 1),
                        self.relay.logtext())

    def test_notify_never_and_success(self):
        """NOTIFY=NEVER: no bounce.  NOTIFY=SUCCESS to a server without
        DSN: a "relayed" report."""
        self.down.flag("reject", True)
        self.start_relay()
        self.send("bob@example.net", rcpt_options=["NOTIFY=NEVER"])
        self.assertTrue(self.relay.wait_empty(10))
        self.down.flag("reject", False)
        self.send("bob@example.net", rcpt_options=["NOTIFY=SUCCESS"])
        box = os.path.join(self.mail, "alice")
        self.assertTrue(wait_for(lambda: len(maildir_msgs(box)) == 1),
                        self.relay.logtext())
        per_msg, rcpts = status_part(maildir_msgs(box)[0])
        self.assertEqual(rcpts[0]["Action"], "relayed")
        self.assertEqual(rcpts[0]["Status"][0], "2")
        self.assertEqual(len(self.down.stored()), 1)

    def test_dsn_passed_on(self):
        """To a server that offers DSN (smtpx-recv --dsn) the requests go
        on, decoded and encoded again, and the success report is that
        server's to send: none comes from the relay."""
        recv = peers.Receiver(os.path.join(BUILD, "examples", "smtpx-recv"),
                              "next.test", "--dsn", "-v")
        try:
            self.relay = Relay(
                BUILD, self.dir, "--smarthost", "127.0.0.1:%d" % recv.port,
                "--smarthost-tls", "none", "--mynetworks", "127.0.0.0/8",
                "--local-domain", "example.org", "--maildir",
                self.mail).start()
            self.send("bob@example.net",
                      rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                    "ORCPT=rfc822;Bob+2Bx@example.net"],
                      mail_options=["RET=HDRS", "ENVID=ab+2Bc"])
            self.assertTrue(self.relay.wait_empty(10), self.relay.logtext())
            self.assertTrue(wait_for(lambda: len(recv.messages()) == 1))
            log = recv.logtext()
            self.assertIn("RET=HDRS", log)
            self.assertIn("ENVID=ab+2Bc", log)
            self.assertIn("NOTIFY=SUCCESS,FAILURE", log)
            self.assertIn("ORCPT=rfc822;Bob+2Bx@example.net", log)
            time.sleep(0.5)
            self.assertEqual(maildir_msgs(os.path.join(self.mail, "alice")),
                             [])
        finally:
            recv.stop()
            recv.cleanup()

    def test_relay_refused(self):
        """Not from --mynetworks and not authenticated: no relaying."""
        self.relay = Relay(BUILD, self.dir, "--smarthost",
                           "127.0.0.1:%d" % self.down.port,
                           "--local-domain", "example.org", "--maildir",
                           self.mail).start()
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("x@example.com")
            code, text = s.rcpt("bob@example.net")
            self.assertEqual(code, 554, text)
            code, _ = s.rcpt("carol@example.org")  # local: taken
            self.assertEqual(code, 250)

    def test_restart_and_flush(self):
        """A deferred message survives a restart; --flush retries it."""
        self.down.flag("defer", True)
        self.start_relay("--retry-min", "1h")
        self.send("bob@example.net")
        self.assertTrue(wait_for(lambda: "451" in self.relay.listing()))
        self.assertEqual(self.relay.stop(), 0)
        self.assertIn("451", self.relay.listing())  # without a relay
        # The server takes mail again: a retry at the start would show.
        self.down.flag("defer", False)
        self.relay.start()
        time.sleep(1)
        self.assertEqual(self.down.stored(), [])  # next try is an hour away
        r = self.relay.flush()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.relay.wait_empty(10), self.relay.logtext())
        self.assertEqual(len(self.down.stored()), 1)

    def test_tmpfs_full(self):
        """A real small tmpfs fills up: the relay answers 452, nothing
        partial stays in the queue, and every message that got a 250 is
        delivered once space is no longer needed."""
        q = os.path.join(self.dir, "queue")
        os.makedirs(q)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                            q], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + r.stderr)
        try:
            self.down.flag("defer", True)
            self.start_relay("--retry-min", "1s", "--retry-max", "1s")
            big = MESSAGE + b"x" * 78 + b"\r\n"
            big = big + (b"y" * 998 + b"\r\n") * 100  # about 100 KB
            acked, refused = 0, None
            with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
                for i in range(40):
                    try:
                        s.sendmail("alice@example.org", ["bob@example.net"],
                                   big)
                        acked += 1
                    except smtplib.SMTPDataError as e:
                        refused = e.smtp_code
                        break
            self.assertEqual(refused, 452, "the disk never filled")
            self.assertGreater(acked, 0)
            # Nothing of the refused message stays in tmp/.  The engine
            # saves the deferred messages' state through tmp/ every
            # second, so a file can be there for a moment: each one seen
            # must go.
            tmp = os.path.join(q, "tmp")
            seen = set(os.listdir(tmp))
            self.assertTrue(wait_for(lambda: not seen & set(os.listdir(tmp))),
                            (seen, os.listdir(tmp)))
            self.assertEqual(self.relay.queued(), acked)
            self.down.flag("defer", False)
            self.assertTrue(self.relay.wait_empty(30), self.relay.logtext())
            self.assertEqual(len(self.down.stored()), acked)
            for n in self.down.stored():
                with open(os.path.join(self.down.dir, n), "rb") as f:
                    self.assertTrue(f.read().endswith(big))
            self.assertEqual(self.relay.stop(), 0)
        finally:
            subprocess.run(["umount", "-l", q], capture_output=True)

    def test_8bit_to_7bit_server(self):
        """A downstream server without 8BITMIME (aiosmtpd told not to
        offer it): an 8-bit message (BODY=8BITMIME) reaches it made 7-bit,
        quoted-printable, and Python's email package decodes the same text
        from it; one with 8-bit octets in its Subject cannot be converted
        and bounces (554 5.6.3) with the reason, to the sender's
        mailbox."""
        self.down.flag("no8bit", True)
        self.start_relay()
        text = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e =\u00e0 la carte \n"
        msg = (b"From: alice@example.org\r\nTo: bob@example.net\r\n"
               b"Subject: menu\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n" +
               text.replace("\n", "\r\n").encode())
        self.send("bob@example.net", mail_options=("BODY=8BITMIME",),
                  msg=msg)
        self.assertTrue(wait_for(lambda: len(self.down.stored()) == 1, 60),
                        self.relay.logtext())
        with open(os.path.join(self.down.dir, self.down.stored()[0]),
                  "rb") as f:
            got = f.read()
        self.assertTrue(all(b < 128 for b in got), got)
        parsed = email.message_from_bytes(got, policy=email.policy.default)
        self.assertEqual(parsed["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(parsed["Subject"], "menu")
        self.assertEqual(parsed.get_content(), text.replace("\n", "\r\n"))
        self.assertIn("converted to 7 bits (1 parts re-encoded",
                      self.relay.logtext())
        self.assertTrue(self.relay.wait_empty(60), self.relay.logtext())
        # 8-bit octets in a header field: returned, with the reason.
        self.send("bob@example.net", mail_options=("BODY=8BITMIME",),
                  msg=b"From: alice@example.org\r\nSubject: caf\xc3\xa9"
                      b"\r\n\r\nx\r\n")
        self.assertTrue(wait_for(
            lambda: "cannot be made 7-bit: 8-bit octets in a header field"
                    in self.relay.logtext(), 60), self.relay.logtext())
        self.assertRegex(self.relay.logtext(),
                         r"to=<bob@example.net> relay=none attempts=1 "
                         r"status=bounced \(554 ")
        box = os.path.join(self.mail, "alice")
        self.assertTrue(wait_for(lambda: len(maildir_msgs(box)) == 1, 60),
                        self.relay.logtext())
        _, rcpts = status_part(maildir_msgs(box)[0])
        self.assertEqual(rcpts[0]["Action"], "failed")
        self.assertEqual(rcpts[0]["Status"], "5.6.3")
        self.assertIn("cannot be made 7-bit",
                      rcpts[0]["Diagnostic-Code"])
        self.assertEqual(len(self.down.stored()), 1)

    def test_local_pipe(self):
        """--pipe: exit 75 defers, 0 delivers; the envelope is in the
        environment."""
        out = os.path.join(self.dir, "piped")
        flag = os.path.join(self.dir, "busy")
        open(flag, "w").close()
        cmd = ("if [ -e %s ]; then exit 75; fi; "
               "{ echo \"$SENDER $RECIPIENT $USER\"; cat; } > %s" % (flag, out))
        self.relay = Relay(BUILD, self.dir, "--local-domain", "example.org",
                           "--pipe", cmd, "--mynetworks", "127.0.0.0/8",
                           "--retry-min", "1s", "--retry-max", "1s").start()
        self.send("carol@example.org")
        self.assertTrue(wait_for(lambda: "status=deferred" in
                                 self.relay.logtext()))
        os.unlink(flag)
        self.assertTrue(self.relay.wait_empty(15), self.relay.logtext())
        with open(out, "rb") as f:
            got = f.read()
        self.assertTrue(got.startswith(
            b"alice@example.org carol@example.org carol\n"), got)
        self.assertTrue(got.endswith(MESSAGE), got)

    def test_slow_pipe_holds_up_nothing(self):
        """A --pipe command that takes its time (it waits for the test)
        holds up no remote delivery: local deliveries run on threads of
        their own.  Told to stop meanwhile, the relay waits for the
        command and records its result."""
        gate = os.path.join(self.dir, "gate")
        os.mkfifo(gate)
        out = os.path.join(self.dir, "piped")
        cmd = ("cat > %s.$USER.tmp && mv %s.$USER.tmp %s.$USER && "
               "read x < %s" % (out, out, out, gate))
        self.relay = Relay(
            BUILD, self.dir, "--smarthost", "127.0.0.1:%d" % self.down.port,
            "--smarthost-tls", "none", "--mynetworks", "127.0.0.0/8",
            "--local-domain", "example.org", "--pipe", cmd).start()
        self.send("carol@example.org")
        self.assertTrue(wait_for(lambda: os.path.exists(out + ".carol"), 60),
                        self.relay.logtext())
        self.send("bob@example.net")
        self.assertTrue(wait_for(lambda: len(self.down.stored()) == 1, 60),
                        self.relay.logtext())
        # The server stores bob's before the relay reads its 250 and
        # removes the file: wait for that; carol's stays, with the command.
        self.assertTrue(wait_for(lambda: self.relay.queued() == 1, 60),
                        self.relay.logtext())
        self.assertTrue(wait_for(lambda: "to=<bob@example.net>" in
                                 self.relay.logtext(), 60))
        self.assertEqual(self.relay.queued(), 1, self.relay.logtext())
        self.assertNotIn("to=<carol@example.org>", self.relay.logtext())
        with open(gate, "w") as g:
            g.write("go\n")
        self.assertTrue(self.relay.wait_empty(60), self.relay.logtext())
        # Again, and SIGTERM while the command waits.
        self.send("dave@example.org")
        self.assertTrue(wait_for(lambda: os.path.exists(out + ".dave"), 60),
                        self.relay.logtext())
        self.relay.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(self.relay.proc.poll(), self.relay.logtext())
        with open(gate, "w") as g:
            g.write("go\n")
        self.assertEqual(self.relay.proc.wait(60), 0, self.relay.logtext())
        self.assertEqual(self.relay.queued(), 0, self.relay.logtext())
        log = self.relay.logtext()
        for who in ("carol@example.org", "dave@example.org"):
            self.assertRegex(log, r"to=<%s> relay=none attempts=1 "
                                  r"status=sent" % who)
        with open(out + ".dave", "rb") as f:
            self.assertTrue(f.read().endswith(MESSAGE))


    def test_max_local(self):
        """--max-local bounds the local deliveries under way: with the
        default two, a second command starts while the first waits; with
        --max-local 1 it starts only once the first is over, and remote
        mail still goes meanwhile."""
        gate = os.path.join(self.dir, "gate")
        out = os.path.join(self.dir, "piped")
        # Each command writes its file, then waits at a gate of its own.
        cmd = ("cat > %s.$USER.tmp && mv %s.$USER.tmp %s.$USER && "
               "read x < %s.$USER" % (out, out, out, gate))

        def let_go(user):
            # Once its command reads the gate (no reader yet: ENXIO).
            end = time.monotonic() + 60
            while True:
                try:
                    fd = os.open(gate + "." + user,
                                 os.O_WRONLY | os.O_NONBLOCK)
                    break
                except OSError:
                    self.assertLess(time.monotonic(), end,
                                    "no command came to the gate")
                    time.sleep(0.05)
            os.write(fd, b"go\n")
            os.close(fd)

        for limit, extra in ((2, ()), (1, ("--max-local", "1"))):
            first, second = ("%s%d" % (who, limit) for who in ("carol", "erin"))
            for user in (first, second):
                os.mkfifo(gate + "." + user)
            self.relay = Relay(
                BUILD, self.dir, "--smarthost",
                "127.0.0.1:%d" % self.down.port, "--smarthost-tls", "none",
                "--mynetworks", "127.0.0.0/8", "--local-domain",
                "example.org", "--pipe", cmd, *extra).start()
            self.send(first + "@example.org")
            self.assertTrue(
                wait_for(lambda: os.path.exists(out + "." + first), 60),
                self.relay.logtext())
            self.send(second + "@example.org")
            stored = len(self.down.stored())
            self.send("bob@example.net")
            self.assertTrue(
                wait_for(lambda: len(self.down.stored()) == stored + 1, 60),
                self.relay.logtext())
            if limit == 1:
                # One worker, and it waits at the first gate: the second
                # command has not begun, and does once the first is over.
                time.sleep(1)
                self.assertFalse(os.path.exists(out + "." + second),
                                 self.relay.logtext())
                let_go(first)
            self.assertTrue(
                wait_for(lambda: os.path.exists(out + "." + second), 60),
                self.relay.logtext())
            if limit == 2:
                let_go(first)
            let_go(second)
            self.assertTrue(self.relay.wait_empty(60), self.relay.logtext())
            self.assertEqual(self.relay.stop(), 0, self.relay.logtext())
            self.relay.close()
            log = self.relay.logtext()
            for user in (first, second):
                self.assertRegex(log, r"to=<%s@example.org> relay=none "
                                      r"attempts=1 status=sent" % user)
        self.relay = None

    def test_local_socket(self):
        """--listen /PATH: a client on the local socket (Python's smtplib)
        may relay without --mynetworks or AUTH, the socket's mode
        (--socket-mode) saying who may connect; one on TCP outside
        --mynetworks still may not.  The socket goes when the relay
        ends."""
        path = os.path.join(self.dir, "relay.sock")
        self.relay = Relay(
            BUILD, self.dir, "--smarthost", "127.0.0.1:%d" % self.down.port,
            "--smarthost-tls", "none", "--mynetworks", "10.0.0.0/8",
            "--listen", path, "--socket-mode", "600").start()
        self.assertTrue(wait_for(lambda: os.path.exists(path)),
                        self.relay.logtext())
        st = os.lstat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with UnixSMTP(path, local_hostname="app.test", timeout=10) as s:
            s.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
        self.assertTrue(wait_for(lambda: len(self.down.stored()) == 1),
                        self.relay.logtext())
        with open(os.path.join(self.down.dir, self.down.stored()[0]),
                  "rb") as f:
            self.assertTrue(f.read().endswith(MESSAGE))
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("alice@example.org")
            code, text = s.rcpt("bob@example.net")
            self.assertEqual(code, 554, text)
        self.assertRegex(self.relay.logtext(),
                         r"client=local from=<alice@example\.org>")
        self.assertEqual(self.relay.stop(), 0, self.relay.logtext())
        self.assertFalse(os.path.lexists(path))
        self.relay.close()
        # A live relay's socket is not taken over.
        self.relay = Relay(
            BUILD, self.dir, "--smarthost", "127.0.0.1:%d" % self.down.port,
            "--smarthost-tls", "none", "--listen", path).start()
        self.assertTrue(wait_for(lambda: os.path.exists(path)),
                        self.relay.logtext())
        r = subprocess.run([self.relay.bin, "--listen", path, "--queue",
                            os.path.join(self.dir, "q2")],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"cannot listen on " + path.encode(), r.stderr)
        self.assertTrue(os.path.exists(path))

    def test_options(self):
        """The numeric limits refuse nonsense with exit status 2."""
        q = os.path.join(self.dir, "q")
        relay = os.path.join(BUILD, "examples", "smtpx-relay")
        for opt in ("--max-local", "--max-conns", "--max-conns-per-dest",
                    "--intake-threads"):
            for bad in ("0", "-1", "x", "", "1x", "100001"):
                r = subprocess.run([relay, "--listen", "127.0.0.1:0",
                                    "--queue", q, opt, bad],
                                   capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 2, (opt, bad, r.stderr))
        r = subprocess.run([relay, "--listen", "127.0.0.1:0", "--queue", q,
                            "--max-local", "1001"], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"--max-local N", r.stderr)
        for args in (["--socket-mode", "600"],  # no /PATH to listen on
                     ["--listen", "/tmp/x.sock", "--socket-mode", "800"],
                     ["--listen", "/tmp/x.sock", "--socket-mode", "x"],
                     ["--listen", "/tmp/x.sock", "--socket-mode", "-1"]):
            r = subprocess.run([relay, "--listen", "127.0.0.1:0", "--queue",
                                q] + args, capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 2, (args, r.stderr))


class SmarthostTls(unittest.TestCase):
    """The smarthost policy: STARTTLS with the certificate and name
    verified, then AUTH; a wrong password or an unverified certificate
    defers the mail and sends nothing."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smtpx-relay-tls-")
        self.store = os.path.join(self.dir, "store")
        os.makedirs(self.store)
        tls = os.path.join(HERE, "..", "data", "tls")
        self.ca = os.path.join(tls, "ca.pem")
        self.untrusted = os.path.join(tls, "untrusted-ca.pem")
        self.port = peers.free_port()
        self.aio = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "aio_server.py"),
             str(self.port), self.store, os.path.join(tls, "server.pem"),
             os.path.join(tls, "server.key"), "bob", "s3cret"])
        peers.wait_port(self.port, self.aio)
        self.relay = None

    def tearDown(self):
        if self.relay is not None:
            self.assertEqual(self.relay.stop(), 0, self.relay.logtext())
            self.relay.close()
        peers.stop_process(self.aio)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, ca, password):
        env = dict(os.environ, SMTPX_RELAY_PASSWORD=password)
        self.relay = Relay(BUILD, self.dir, "--smarthost",
                           "localhost:%d" % self.port, "--tls-ca", ca,
                           "--smarthost-user", "bob", "--mynetworks",
                           "127.0.0.0/8", "--retry-min", "1h",
                           env=env).start()
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            s.sendmail("alice@example.org", ["carol@example.net"], MESSAGE)

    def test_verified_and_authenticated(self):
        self.start(self.ca, "s3cret")
        self.assertTrue(self.relay.wait_empty(15), self.relay.logtext())
        with open(os.path.join(self.store, "1.env")) as f:
            env = f.read()
        self.assertIn("login=bob", env)
        self.assertIn("tls=1", env)
        with open(os.path.join(self.store, "1.eml"), "rb") as f:
            self.assertTrue(f.read().endswith(MESSAGE))

    def test_wrong_password_defers(self):
        self.start(self.ca, "wrong")
        self.assertTrue(wait_for(lambda: "Authentication refused" in
                                 self.relay.listing()),
                        self.relay.logtext())
        self.assertEqual(self.relay.queued(), 1)
        self.assertFalse(os.path.exists(os.path.join(self.store, "1.eml")))

    def test_unverified_certificate_defers(self):
        self.start(self.untrusted, "s3cret")
        self.assertTrue(wait_for(lambda: "status=deferred" in
                                 self.relay.logtext()),
                        self.relay.logtext())
        self.assertEqual(self.relay.queued(), 1)
        self.assertFalse(os.path.exists(os.path.join(self.store, "1.eml")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
